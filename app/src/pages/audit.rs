//! `/settings/audit` (admins): who changed what, and when.

use crate::components::guard::Guarded;
use crate::error::AppError;
use domain::AuditEntry;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "audit_log")]
pub async fn audit_log() -> Result<Vec<AuditEntry>, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.audit_log(&admin).await?)
}

/// `2026-11-29 19:40 UTC`: absolute and unambiguous, as an audit trail should be.
pub fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), so this compiles for wasm without a time crate.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let entries = Resource::new(|| (), |_| audit_log());
    view! {
        <Title text="Audit log"/>
        <Guarded admin_only=true page=move |_admin| {
            view! {
                <nav class="breadcrumbs" aria-label="Breadcrumb">
                    <span>"Settings"</span><span aria-hidden="true">"›"</span><span aria-current="page">"Audit log"</span>
                </nav>
                <div class="page-head">
                    <div>
                        <h1>"Audit log"</h1>
                        <p class="muted">"Who changed settings, connected, disconnected or granted consent, and when."</p>
                    </div>
                </div>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match entries.await {
                            Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(list) if list.is_empty() => view! {
                                <section class="empty-state"><h2>"Nothing recorded yet"</h2>
                                <p>"Changes to integration settings and connections will be listed here."</p></section>
                            }.into_any(),
                            Ok(list) => view! {
                                <div class="card table-wrap">
                                    <table class="audit" data-testid="audit-log">
                                        <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th></tr></thead>
                                        <tbody>
                                            {list.into_iter().map(|e| view! {
                                                <tr data-action=e.action.clone()>
                                                    <td class="nowrap">{format_time(e.at)}</td>
                                                    <td>{e.actor}</td>
                                                    <td>{e.summary}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_unix_times_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::format_time(1_796_083_200 + 19 * 3600 + 40 * 60), "2026-12-01 19:40 UTC");
        assert_eq!(super::format_time(951_782_400), "2000-02-29 00:00 UTC");
    }
}
