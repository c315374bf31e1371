//! Keeping the schedule right is the scheduler's job alone: `reconcile_org` schedules members'
//! connections and service account users' mailboxes in one place, and the scheduler's own loop
//! runs it again for every organization, so a reconcile that failed heals by itself.

use crate::harness::*;
use domain::PauseReason;
use domain::permissions::ConnectionMode;
use domain::{AuditEntry, ConnectionKind, MailboxHealth, OrgId, ReasonCode, Role, ServiceAccountUser, UserId};
use microsoft::ExposeSecret;
use std::time::Duration;
use store::sync::SyncMailbox;
use store::{NewConnection, accounts};
use sync::{Scheduler, SyncError};

const CAROL: &str = "carol@northwind.test";
const DAVE: &str = "dave@northwind.test";

fn audit(action: &str) -> AuditEntry {
    AuditEntry { at: store::now_unix(), actor: "admin".into(), action: action.into(), summary: action.into() }
}

/// `org` in application-permissions mode with its service connection, as activating it after
/// admin consent leaves it (an app-only token proves the consent). Returns (admin, connection).
async fn activate_application(env: &Env, org: OrgId) -> (UserId, uuid::Uuid) {
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: NW.to_string(),
        client_id: m365_emulator::DEMO_CLIENT_ID.to_string(),
        client_secret_set: true,
        mode: ConnectionMode::ApplicationPermissions,
        ..Default::default()
    };
    let secret = store::secrets::SecretString::from(m365_emulator::DEMO_CLIENT_SECRET);
    env.store.save_office365_settings(org, &settings, Some(&secret), &[]).await.unwrap();
    let email = format!("admin-{}@northwind.test", org.as_uuid().simple());
    let admin = accounts::create_user(env.store.as_ref(), org, &email, "Admin", Role::Admin, "password-123").await.unwrap();
    let token = env.client.client_credentials(&app()).await.unwrap();
    let connection = NewConnection {
        org_id: org,
        user_id: admin.id,
        kind: ConnectionKind::Application,
        is_primary: true,
        ms_tenant_id: NW.to_string(),
        ms_object_id: String::new(),
        ms_username: m365_emulator::DEMO_CLIENT_ID.to_string(),
        ms_name: "Application permissions".into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: store::secrets::SecretString::from(token.access_token.expose_secret()),
        access_expires_at: token.expires_at.unix_timestamp(),
        refresh_token: None,
    };
    let c = env.store.save_connection(&connection, &audit("office365.service_activated")).await.unwrap();
    (admin.id, c.id)
}

/// Adds a service account user as the Service accounts page does (no reconcile here).
async fn add_user(env: &Env, org: OrgId, email: &str, health: Option<MailboxHealth>) -> uuid::Uuid {
    let user = ServiceAccountUser {
        id: uuid::Uuid::new_v4(),
        ms_object_id: None,
        ms_username: email.to_string(),
        display_name: email.to_string(),
        added_by: "admin".into(),
        added_at: store::now_unix(),
        health,
        health_at: health.map(|_| store::now_unix()),
    };
    assert!(env.store.add_service_account_user(org, &user, &audit("office365.service_user_added")).await.unwrap());
    user.id
}

/// The mailboxes of `org` scheduled for service account users, by user.
async fn user_mailboxes(env: &Env, org: OrgId) -> Vec<SyncMailbox> {
    env.store.sync_mailboxes_in_org(org).await.unwrap().into_iter().filter(|m| m.graph_user_id.is_some()).collect()
}

fn of<'a>(mailboxes: &'a [SyncMailbox], email: &str) -> Option<&'a SyncMailbox> {
    mailboxes.iter().find(|m| m.graph_user_id.as_deref() == Some(email))
}

#[tokio::test]
async fn reconcile_org_alone_schedules_the_service_account_users_mailboxes() {
    let env = spawn().await;
    let (_, alice_conn) = env.connect(ALICE, true).await;
    let bob = accounts::create_user(env.store.as_ref(), env.org, BOB, "Bob", Role::Member, "password-123").await.unwrap();
    let (admin, _) = activate_application(&env, env.org).await;
    add_user(&env, env.org, BOB, None).await;
    let carol = add_user(&env, env.org, CAROL, Some(MailboxHealth::Ok)).await;
    // A mailbox the service connection could not open is not scheduled: its row says why.
    add_user(&env, env.org, DAVE, Some(MailboxHealth::Problem(ReasonCode::NoMailboxAccess))).await;

    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let users = user_mailboxes(&env, env.org).await;
    assert_eq!(users.len(), 2, "{users:#?}");
    let (bob_mb, carol_mb) = (of(&users, BOB).unwrap().clone(), of(&users, CAROL).unwrap().clone());
    assert_eq!(bob_mb.user_id, bob.id, "bob's data belongs to bob's account here");
    assert_eq!(carol_mb.user_id, admin, "carol has no account here: the service connection's owner");
    assert!(of(&users, DAVE).is_none());
    assert!(users.iter().all(|m| m.paused.is_none()));
    // Members' own connections wait while the organization uses a service account.
    assert_eq!(
        env.store.sync_mailbox(env.mailbox_of(alice_conn).await).await.unwrap().unwrap().paused,
        Some(PauseReason::ServiceAccountMode)
    );

    let outs = s.run_until_idle().await.unwrap();
    assert_eq!(outs.len(), 2, "{outs:?}");
    for o in &outs {
        o.result.as_ref().unwrap();
    }
    env.assert_converged(bob_mb.id, BOB).await;
    env.assert_converged(carol_mb.id, CAROL).await;

    // Reconciling again changes nothing; removing carol unschedules her mailbox.
    s.reconcile_org(env.org).await.unwrap();
    let ids: std::collections::BTreeSet<uuid::Uuid> = user_mailboxes(&env, env.org).await.iter().map(|m| m.id).collect();
    assert_eq!(ids, [bob_mb.id, carol_mb.id].into());
    assert!(env.store.remove_service_account_user(env.org, carol, &audit("office365.service_user_removed")).await.unwrap());
    s.reconcile_org(env.org).await.unwrap();
    assert_eq!(user_mailboxes(&env, env.org).await.iter().map(|m| m.id).collect::<Vec<_>>(), vec![bob_mb.id]);

    // Poll-primary-only pauses the users' mailboxes too, the moment they are scheduled.
    env.settings(|s| s.poll_primary_only = true).await;
    add_user(&env, env.org, CAROL, None).await;
    s.reconcile_org(env.org).await.unwrap();
    let users = user_mailboxes(&env, env.org).await;
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|m| m.paused == Some(PauseReason::PollPrimaryOnly)), "{users:#?}");
    assert!(s.run_until_idle().await.unwrap().is_empty());

    // Back to members' own connections: the service mailboxes go, alice's resumes.
    env.settings(|s| {
        s.poll_primary_only = false;
        s.mode = ConnectionMode::Individual;
    })
    .await;
    s.reconcile_org(env.org).await.unwrap();
    assert!(user_mailboxes(&env, env.org).await.is_empty());
    assert_eq!(env.store.sync_mailbox(env.mailbox_of(alice_conn).await).await.unwrap().unwrap().paused, None);
    env.emu.shutdown().await;
}

/// A database fault: from now on every write that would schedule a mailbox of `org` fails (a
/// trigger refuses the insert), until `outage_ends`. The store, the scheduler and the loop see a
/// real database error.
async fn outage_begins(env: &Env, org: OrgId) {
    let hex = org.as_uuid().simple().to_string();
    if env.db_url.starts_with("sqlite:") {
        raw_sqlite(
            env,
            &format!(
                "CREATE TRIGGER injected_outage BEFORE INSERT ON sync_mailboxes WHEN NEW.org_id = X'{hex}' \
                 BEGIN SELECT RAISE(ABORT, 'injected outage'); END"
            ),
        )
        .await;
    } else {
        raw_postgres(
            env,
            "CREATE FUNCTION injected_outage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected outage'; END $$",
        )
        .await;
        raw_postgres(
            env,
            &format!(
                "CREATE TRIGGER injected_outage BEFORE INSERT ON sync_mailboxes FOR EACH ROW \
                 WHEN (NEW.org_id = '{}'::uuid) EXECUTE FUNCTION injected_outage()",
                org.as_uuid()
            ),
        )
        .await;
    }
}

async fn outage_ends(env: &Env) {
    if env.db_url.starts_with("sqlite:") {
        raw_sqlite(env, "DROP TRIGGER injected_outage").await;
    } else {
        raw_postgres(env, "DROP TRIGGER injected_outage ON sync_mailboxes").await;
    }
}

async fn raw_sqlite(env: &Env, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&env.db_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut c).await.unwrap();
}

async fn raw_postgres(env: &Env, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&env.db_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut c).await.unwrap();
}

/// Waits until `email`'s mailbox in `org` exists and has finished its first sync of everything.
async fn wait_for_first_sync(env: &Env, org: OrgId, email: &str, within: Duration) -> uuid::Uuid {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if let Some(mb) = of(&user_mailboxes(env, org).await, email)
            && let Some(st) = env.store.mailbox_status(mb.id).await.unwrap()
            && st.resources.len() == 4
            && st.resources.iter().all(|r| r.first_sync_done)
            && st.mailbox.lease_owner.is_none()
        {
            return mb.id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{email}'s mailbox was not scheduled and synced within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reconcile_is_healed_by_the_schedulers_own_pass() {
    let env = spawn().await;
    // Two organizations in service-account mode; the one reconciled first is the one that fails,
    // so the other shows a failure does not hold the pass up.
    let contoso = env.store.create_organization("Contoso").await.unwrap().id;
    let (failing, healthy) = if env.org.as_uuid() < contoso.as_uuid() { (env.org, contoso) } else { (contoso, env.org) };
    activate_application(&env, failing).await;
    activate_application(&env, healthy).await;
    assert_eq!(env.store.orgs_with_connections().await.unwrap(), vec![failing, healthy]);

    let mut cfg = test_config("background");
    cfg.reconcile_every = Duration::from_millis(300);
    let s = Scheduler::new(env.engine(cfg));
    let (stop, stopped) = tokio::sync::watch::channel(false);

    // An admin adds bob as a service account user; the reconcile that follows fails (the
    // database refuses to schedule the mailbox), as the page's call would.
    outage_begins(&env, failing).await;
    add_user(&env, failing, BOB, None).await;
    let err = s.reconcile_org(failing).await.unwrap_err();
    assert!(matches!(err, SyncError::Store(_)), "{err:?}");
    assert!(user_mailboxes(&env, failing).await.is_empty());

    // Meanwhile carol is added in the other organization, and nobody reconciles it by hand either.
    add_user(&env, healthy, CAROL, None).await;
    let loop_handle = s.clone().spawn(stopped);
    // The loop's passes keep failing for the first organization and carry on with the second.
    let carol_mb = wait_for_first_sync(&env, healthy, CAROL, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(user_mailboxes(&env, failing).await.is_empty(), "still refused");
    assert!(!loop_handle.is_finished(), "failed passes do not stop the loop");

    // The database recovers: the next pass schedules bob's mailbox and it syncs, with no call
    // from anyone.
    outage_ends(&env).await;
    let bob_mb = wait_for_first_sync(&env, failing, BOB, Duration::from_secs(20)).await;
    env.assert_converged(bob_mb, BOB).await;
    env.assert_converged(carol_mb, CAROL).await;

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_handle).await.unwrap().unwrap();
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_mailbox_scheduled_by_address_is_replaced_once_the_directory_id_is_known() {
    let env = spawn().await;
    activate_application(&env, env.org).await;
    let bob = add_user(&env, env.org, BOB, None).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let by_address = of(&user_mailboxes(&env, env.org).await, BOB).expect("scheduled by address").id;

    // The background check learns Bob's directory id: one mailbox, scheduled by that id.
    let bob_id = "0b0b0b0b-1111-4222-8333-444455556666".to_string();
    env.store.set_service_account_user_health(env.org, bob, Some(&bob_id), MailboxHealth::Ok, store::now_unix()).await.unwrap();
    s.reconcile_org(env.org).await.unwrap();
    let users = user_mailboxes(&env, env.org).await;
    assert_eq!(users.len(), 1, "Bob is synced once: {users:#?}");
    assert_eq!(users[0].graph_user_id.as_deref(), Some(bob_id.as_str()));
    assert_ne!(users[0].id, by_address);
    env.emu.shutdown().await;
}
