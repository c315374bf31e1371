//! `/settings/integrations/office365/team` (admins): every member's connection, its state, its
//! change delivery, the last error and who must act, with Disconnect per row.

use crate::components::guard::Guarded;
use crate::error::AppError;
use crate::pages::office365::{Office365Header, Office365Tab};
use domain::views::TeamRow;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "load_team_connections")]
pub async fn load_team_connections() -> Result<Vec<TeamRow>, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.team_connections(&admin).await?)
}

/// "Sync now" on one row: the connection's mailboxes are due at once.
#[server(endpoint = "sync_team_connection_now")]
pub async fn sync_team_connection_now(id: String) -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.sync_team_connection_now(&admin, &id).await?)
}

#[server(endpoint = "disconnect_team_connection")]
pub async fn disconnect_team_connection(id: String) -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.disconnect_team_connection(&admin, &id).await?)
}

#[component]
pub fn TeamConnectionsPage() -> impl IntoView {
    let disconnect = ServerAction::<DisconnectTeamConnection>::new();
    let sync_now = ServerAction::<SyncTeamConnectionNow>::new();
    let rows = Resource::new(move || (disconnect.version().get(), sync_now.version().get()), |_| load_team_connections());
    view! {
        <Title text="Team connections · Office 365"/>
        <Guarded admin_only=true page=move |_admin| view! {
            <Office365Header active=Office365Tab::Team crumb="Team connections"
                lead="Every member's connection, its state, and who must act when something is wrong."/>
            <Suspense fallback=|| view! { <p class="muted">"Loading connections…"</p> }>
                {move || Suspend::new(async move {
                    match rows.await {
                        Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <section class="empty-state" data-testid="team-empty"><h2>"No connections yet"</h2>
                            <p>"Members appear here once they connect their Office 365 accounts."</p></section>
                        }.into_any(),
                        Ok(list) => view! {
                            <crate::components::ready::Ready/>
                            <div class="card table-wrap">
                                <table data-testid="team-connections">
                                    <thead><tr>
                                        <th scope="col">"Member"</th><th scope="col">"Microsoft account"</th>
                                        <th scope="col">"State"</th><th scope="col">"Last sync"</th>
                                        <th scope="col">"Last error and who must act"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|r| {
                                            let tone = if r.state == domain::ConnectionState::Active { "good" } else { "warn" };
                                            let id = r.id.clone();
                                            let sync_id = r.id.clone();
                                            view! {
                                                <tr data-owner=r.owner_email.clone()>
                                                    <td>{r.owner.clone()}<br/><span class="muted">{r.owner_email.clone()}</span></td>
                                                    <td>{r.ms_username.clone()}{r.is_primary.then_some(" · primary")}</td>
                                                    <td><span class=format!("badge badge--{tone}") data-testid="team-state">{r.state.label()}</span></td>
                                                    <td data-testid="team-sync">{match r.sync.clone() {
                                                        None => view! { <span class="muted">"Not scheduled yet"</span> }.into_any(),
                                                        Some(s) => {
                                                            let last = s.last_sync.map(crate::pages::audit::format_time).unwrap_or_else(|| "Not synced yet".into());
                                                            let counts = s.counts_line();
                                                            view! {
                                                                <crate::pages::sync_status::SyncBadge summary=s.clone()/>
                                                                <br/><span class="muted">{last}</span>
                                                                <br/><span class="muted">{counts}</span>
                                                                <crate::pages::sync_status::ChangeDeliveryLines summary=s/>
                                                            }.into_any()
                                                        }
                                                    }}</td>
                                                    <td>{match r.reason {
                                                        Some(reason) => format!("{} ({})", reason.explained(), reason.who_must_act().label()),
                                                        None => "—".to_string(),
                                                    }}</td>
                                                    <td class="row-actions">
                                                        <ActionForm action=sync_now>
                                                            <input type="hidden" name="id" value=sync_id/>
                                                            <button type="submit" class="button">"Sync now"</button>
                                                        </ActionForm>
                                                        <ActionForm action=disconnect>
                                                            <input type="hidden" name="id" value=id/>
                                                            <button type="submit" class="button">"Disconnect"</button>
                                                        </ActionForm>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Suspense>
        }/>
    }
}
