//! Scenarios every Store implementation must pass.

use crate::harness::{TestDb, on_both_backends};
use domain::{EmailAddress, Role};
use store::accounts::{self, SignInError};
use store::{SessionToken, StoreError};

on_both_backends!(
    organizations_have_unique_names,
    users_have_unique_emails_across_organizations,
    sign_in_starts_a_new_session_each_time,
    wrong_password_and_unknown_email_look_the_same,
    sessions_expire_and_end,
    sign_in_is_rate_limited_per_email,
    success_clears_the_failure_count,
    parallel_wrong_passwords_get_no_more_checks_than_the_limit,
    users_are_listed_per_organization,
    passwords_are_stored_as_argon2id_hashes,
);

async fn organizations_have_unique_names(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    assert_eq!(store.organization_by_name("Northwind").await.unwrap(), Some(org.clone()));
    assert_eq!(store.organization(org.id).await.unwrap(), Some(org));
    assert!(matches!(store.create_organization("Northwind").await, Err(StoreError::Conflict(_))));
    assert_eq!(store.organization_by_name("Nowhere").await.unwrap(), None);
}

async fn users_have_unique_emails_across_organizations(db: &TestDb) {
    let store = db.store.as_ref();
    let a = store.create_organization("A").await.unwrap();
    let b = store.create_organization("B").await.unwrap();
    accounts::create_user(store, a.id, "Pat@Example.com", "Pat", Role::Admin, "long enough pw").await.unwrap();
    let again = accounts::create_user(store, b.id, "pat@example.com", "Pat", Role::Member, "long enough pw").await;
    assert!(matches!(again, Err(accounts::CreateUserError::Store(StoreError::Conflict(_)))));
}

async fn sign_in_starts_a_new_session_each_time(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    let user = accounts::create_user(store, org.id, "alice@northwind.test", "Alice Anders", Role::Member, "alice-password").await.unwrap();
    let now = 1_700_000_000;
    let first = accounts::sign_in(store, " Alice@Northwind.test", "alice-password", "10.0.0.1", now).await.unwrap();
    let second = accounts::sign_in(store, "alice@northwind.test", "alice-password", "10.0.0.1", now).await.unwrap();
    assert_ne!(first.token, second.token, "every sign-in must get a fresh session id");
    let who = store.session_user(&first.token.hash(), now + 1).await.unwrap().unwrap();
    assert_eq!(who.user_id, user.id);
    assert_eq!(who.org_name, "Northwind");
    assert_eq!(who.role, Role::Member);
    assert_eq!(who.email, EmailAddress::parse("alice@northwind.test").unwrap());
    assert!(store.session_user(&second.token.hash(), now + 1).await.unwrap().is_some());
}

async fn wrong_password_and_unknown_email_look_the_same(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    accounts::create_user(store, org.id, "bob@northwind.test", "Bob", Role::Member, "bob-password").await.unwrap();
    let wrong = accounts::sign_in(store, "bob@northwind.test", "not-bobs", "10.0.0.2", 1).await;
    let unknown = accounts::sign_in(store, "nobody@northwind.test", "whatever", "10.0.0.2", 1).await;
    let malformed = accounts::sign_in(store, "not an email", "whatever", "10.0.0.2", 1).await;
    for r in [wrong, unknown, malformed] {
        match r {
            Err(e @ SignInError::BadCredentials) => {
                assert_eq!(e.to_string(), "That email and password do not match an account.")
            }
            Err(other) => panic!("expected BadCredentials, got {other}"),
            Ok(_) => panic!("sign-in must fail"),
        }
    }
}

async fn sessions_expire_and_end(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    accounts::create_user(store, org.id, "carol@northwind.test", "Carol", Role::Admin, "carol-password").await.unwrap();
    let now = 1_700_000_000;
    // Never idle (its idle timeout is its lifetime): it ends at its absolute expiry.
    let ttl = accounts::SESSION_TTL_SECS;
    let s = accounts::sign_in_idle_after(store, ttl, "carol@northwind.test", "carol-password", "ip", now).await.unwrap();
    assert_eq!(s.expires_at, now + ttl);
    assert!(store.session_user(&s.token.hash(), s.expires_at - 1).await.unwrap().is_some());
    assert!(store.session_user(&s.token.hash(), s.expires_at).await.unwrap().is_none());
    assert_eq!(store.purge_expired_sessions(s.expires_at).await.unwrap(), 1);

    // Idle for 10 minutes: each use (recorded at most once a minute) starts the timeout over.
    let idle = accounts::sign_in_idle_after(store, 600, "carol@northwind.test", "carol-password", "ip", now).await.unwrap();
    let hash = idle.token.hash();
    assert!(store.session_user(&hash, now + 30).await.unwrap().is_some(), "within the idle timeout");
    assert!(store.session_user(&hash, now + 599).await.unwrap().is_some(), "its use at +30 s was not recorded (under a minute)");
    assert!(store.session_user(&hash, now + 1100).await.unwrap().is_some(), "under 600 s after the last recorded use");
    assert!(store.session_user(&hash, now + 1700).await.unwrap().is_none(), "unused for 600 s");
    assert_eq!(store.purge_expired_sessions(now + 1700).await.unwrap(), 1, "the idle session is purged");
    let fresh = accounts::sign_in(store, "carol@northwind.test", "carol-password", "ip", now).await.unwrap();
    assert!(store.session_user(&fresh.token.hash(), now + accounts::SESSION_IDLE_SECS - 1).await.unwrap().is_some());
    assert!(store.session_user(&fresh.token.hash(), now + 2 * accounts::SESSION_IDLE_SECS).await.unwrap().is_none(), "12 h by default");
    accounts::sign_out(store, &fresh.token).await.unwrap();

    let s2 = accounts::sign_in(store, "carol@northwind.test", "carol-password", "ip", now).await.unwrap();
    accounts::sign_out(store, &s2.token).await.unwrap();
    assert!(store.session_user(&s2.token.hash(), now).await.unwrap().is_none());
    let stranger = SessionToken::generate();
    assert!(store.session_user(&stranger.hash(), now).await.unwrap().is_none());
}

async fn sign_in_is_rate_limited_per_email(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    accounts::create_user(store, org.id, "dan@northwind.test", "Dan", Role::Member, "dan-password").await.unwrap();
    let now = 1_700_000_000;
    for i in 0..accounts::MAX_FAILURES_PER_EMAIL {
        let r = accounts::sign_in(store, "dan@northwind.test", "guess", &format!("ip{i}"), now + i64::from(i)).await;
        assert!(matches!(r, Err(SignInError::BadCredentials)));
    }
    // Now even the right password is refused, from any address...
    let r = accounts::sign_in(store, "dan@northwind.test", "dan-password", "elsewhere", now + 10).await;
    assert!(matches!(r, Err(SignInError::RateLimited { minutes: 15 })), "got {:?}", r.err());
    // ...until the window has passed.
    let later = now + accounts::FAILURE_WINDOW_SECS + 10;
    assert!(accounts::sign_in(store, "dan@northwind.test", "dan-password", "elsewhere", later).await.is_ok());
}

async fn success_clears_the_failure_count(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    accounts::create_user(store, org.id, "eve@northwind.test", "Eve", Role::Member, "eve-password").await.unwrap();
    let now = 1_700_000_000;
    for _ in 0..accounts::MAX_FAILURES_PER_EMAIL - 1 {
        let _ = accounts::sign_in(store, "eve@northwind.test", "guess", "ip", now).await;
    }
    accounts::sign_in(store, "eve@northwind.test", "eve-password", "ip", now).await.unwrap();
    let f = store.sign_in_failures_since("eve@northwind.test", "ip", now - 60).await.unwrap();
    assert_eq!(f.for_email, 0);
    for _ in 0..accounts::MAX_FAILURES_PER_EMAIL - 1 {
        let _ = accounts::sign_in(store, "eve@northwind.test", "guess", "ip", now).await;
    }
    assert!(accounts::sign_in(store, "eve@northwind.test", "eve-password", "ip", now).await.is_ok());
}

/// Item 1 of the hardening issue: 50 wrong passwords for one email at once (as many requests in
/// flight) get at most `MAX_FAILURES_PER_EMAIL` password checks between them; the rest are refused
/// before any hashing (rate limited, or busy when every hashing slot is taken: both 429).
async fn parallel_wrong_passwords_get_no_more_checks_than_the_limit(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    accounts::create_user(store, org.id, "fay@northwind.test", "Fay", Role::Member, "fay-password").await.unwrap();
    let now = 1_700_000_000;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(
                async move { accounts::sign_in(store.as_ref(), "fay@northwind.test", &format!("guess-{i}"), "10.9.9.9", now).await },
            )
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap() {
            // Only a checked password answers BadCredentials.
            Err(SignInError::BadCredentials) => checked += 1,
            Err(SignInError::RateLimited { .. } | SignInError::Busy) => {}
            Err(other) => panic!("unexpected failure: {other}"),
            Ok(_) => panic!("a wrong password signed in"),
        }
    }
    assert!(checked >= 1, "some guesses must be checked");
    assert!(checked <= accounts::MAX_FAILURES_PER_EMAIL, "{checked} password checks for 50 parallel guesses");
    let recorded = store.sign_in_failures_since("fay@northwind.test", "10.9.9.9", now - 60).await.unwrap();
    assert_eq!(recorded.for_email, checked, "every checked guess, and only those, counts");
    // And the right password is now refused too, until the window has passed.
    let r = accounts::sign_in(store, "fay@northwind.test", "fay-password", "10.9.9.9", now + 1).await;
    if checked == accounts::MAX_FAILURES_PER_EMAIL {
        assert!(matches!(r, Err(SignInError::RateLimited { .. })), "got {:?}", r.err());
    }
}

async fn users_are_listed_per_organization(db: &TestDb) {
    let store = db.store.as_ref();
    let a = store.create_organization("A").await.unwrap();
    let b = store.create_organization("B").await.unwrap();
    accounts::create_user(store, a.id, "zed@a.test", "Zed", Role::Member, "password-1").await.unwrap();
    accounts::create_user(store, a.id, "amy@a.test", "Amy", Role::Admin, "password-2").await.unwrap();
    accounts::create_user(store, b.id, "bea@b.test", "", Role::Member, "password-3").await.unwrap();
    let names: Vec<_> = store.users_in_org(a.id).await.unwrap().into_iter().map(|u| u.display_name).collect();
    assert_eq!(names, ["Amy", "Zed"]);
    let bs = store.users_in_org(b.id).await.unwrap();
    assert_eq!(bs.len(), 1);
    assert_eq!(bs[0].display_name, "bea", "an empty name falls back to the email's local part");
}

async fn passwords_are_stored_as_argon2id_hashes(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("A").await.unwrap();
    accounts::create_user(store, org.id, "h@a.test", "H", Role::Member, "plain-text-pw").await.unwrap();
    let creds = store.user_credentials(&EmailAddress::parse("h@a.test").unwrap()).await.unwrap().unwrap();
    assert!(creds.password_hash.as_str().starts_with("$argon2id$"));
    assert!(!creds.password_hash.as_str().contains("plain-text-pw"));
}
