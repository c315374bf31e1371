//! A marker that turns on once the part of the page around it has hydrated.
//!
//! Server-rendered forms can be clicked before the wasm has taken them over; a click then posts the
//! form natively and the page reloads instead of showing the answer in place. Tests (and anything
//! else that must know) wait until every marker on the page says `data-ready="true"`.

use leptos::prelude::*;

#[component]
pub fn Ready() -> impl IntoView {
    let ready = RwSignal::new(false);
    // Effects run only in the browser, after this part of the page has hydrated.
    Effect::new(move |_| ready.set(true));
    view! { <span hidden data-ready-marker="" data-ready=move || ready.get().then_some("true")></span> }
}
