//! Activity: a person's synced mail, events, contacts and tasks, newest first, searchable and
//! paginated; admins may look at any member of their organization. During a first sync, a
//! progress bar per resource.

use crate::{Error, Integration, Result};
use domain::Resource;
use domain::views::{ACTIVITY_PAGE_SIZE, ActivityQuery, ActivityRow, ActivityView, ProgressRow};
use domain::{SessionUser, UserId};
use store::sync::{ItemQuery, MailboxFilter, MailboxStatus};

impl Integration {
    pub async fn activity(&self, user: &SessionUser, q: &ActivityQuery) -> Result<ActivityView> {
        let people = self.store.users_in_org(user.org_id).await?;
        // Members see their own data only; admins may pick anyone in their organization.
        let target = match q.member.parse::<uuid::Uuid>().ok().map(UserId) {
            Some(id) if id != user.user_id => {
                crate::admin_only(user)?;
                let member = people.iter().find(|p| p.id == id).ok_or(Error::NotFound("That person is not in your organization."))?;
                // Reading someone else's mail is on the record, every time (never what was read).
                let what = Resource::parse(&q.kind).map_or("all synced items", |r| r.items_label());
                let summary = format!(
                    "Viewed {} <{}>'s synced data on Activity ({what}, page {}).",
                    member.display_name,
                    member.email.as_str(),
                    q.page + 1
                );
                self.store.record_audit(user.org_id, &crate::audit(user, "office365.member_items_viewed", summary)).await?;
                member
            }
            _ => people.iter().find(|p| p.id == user.user_id).ok_or(Error::Unauthorized)?,
        };
        // The person's mailboxes with their status, in one read (the database picks them).
        let filter = MailboxFilter { user: Some(target.id), ..MailboxFilter::default() };
        let mailboxes = self.store.org_sync_overview(user.org_id, &filter).await?;
        let settings = self.settings(user.org_id).await?;
        let expected = sync::resources_for(&settings.resources);
        let now = store::now_unix();
        let (mut states, mut progress) = (Vec::new(), Vec::new());
        for status in mailboxes.iter().map(|o| &o.status) {
            let state = status.state(now);
            if !states.contains(&state) {
                states.push(state);
            }
            progress.extend(first_sync_progress(status, &expected));
        }
        let query = ItemQuery {
            org_id: user.org_id,
            user_id: target.id,
            resource: Resource::parse(&q.kind),
            text: Some(q.q.trim().to_owned()).filter(|t| !t.is_empty()),
            offset: q.page.saturating_mul(ACTIVITY_PAGE_SIZE),
            limit: ACTIVITY_PAGE_SIZE + 1,
        };
        // Whose events these are: the person's own address and the Microsoft accounts they synced.
        let mut addresses = vec![target.email.as_str().to_lowercase()];
        let synced: Vec<_> = mailboxes.iter().map(|o| o.status.mailbox.connection_id).collect();
        for c in self.store.connections_in_org(user.org_id).await? {
            if synced.contains(&c.id) && !c.ms_username.is_empty() {
                addresses.push(c.ms_username.to_lowercase());
            }
        }
        let mut items = self.store.activity_items(&query).await?;
        let has_more = items.len() > ACTIVITY_PAGE_SIZE as usize;
        items.truncate(ACTIVITY_PAGE_SIZE as usize);
        Ok(ActivityView {
            viewing: target.display_name.clone(),
            viewing_id: target.id.to_string(),
            members: if user.is_admin() { people.iter().map(|p| (p.id.to_string(), p.display_name.clone())).collect() } else { Vec::new() },
            has_mailbox: !mailboxes.is_empty(),
            sync_states: states,
            at: now,
            progress,
            rows: items.into_iter().map(|a| activity_row(a.resource, a.item, &addresses)).collect(),
            has_more,
        })
    }
}

/// A stored item as Activity shows it, with what its actions need: whether the person organizes
/// an event (by the organizer's address), whether a task is completed or an event cancelled, and a
/// contact's fields to start its edit form from.
fn activity_row(kind: Resource, item: store::sync::SyncedItem, addresses: &[String]) -> ActivityRow {
    let data: serde_json::Value = serde_json::from_str(&item.data).unwrap_or_default();
    let address_in = |s: &str| {
        let a = s.rsplit_once('<').map_or(s, |(_, rest)| rest.trim_end_matches('>')).trim().to_lowercase();
        !a.is_empty() && addresses.contains(&a)
    };
    let (organizer, done, contact) = match kind {
        Resource::Calendar => (address_in(&item.subtitle), data["isCancelled"].as_bool() == Some(true), None),
        Resource::Tasks => (false, item.subtitle.eq_ignore_ascii_case("completed"), None),
        Resource::Contacts => (false, false, Some(contact_draft(&item, &data))),
        Resource::Mail => (false, false, None),
    };
    ActivityRow {
        kind,
        id: item.graph_id,
        container: item.container,
        title: item.title,
        subtitle: item.subtitle,
        preview: item.preview,
        when: item.occurred_at,
        organizer,
        done,
        contact,
    }
}

/// A synced contact's fields as far as the stored row has them: the display name split into first
/// and last name, the address, a phone, and "job title, company".
fn contact_draft(item: &store::sync::SyncedItem, data: &serde_json::Value) -> domain::writes::ContactDraft {
    let (given_name, surname) = match item.title.trim().split_once(' ') {
        Some((g, s)) => (g.to_owned(), s.trim().to_owned()),
        None => (item.title.trim().to_owned(), String::new()),
    };
    let phone = data["mobilePhone"].as_str().or_else(|| data["businessPhones"][0].as_str()).unwrap_or_default().to_owned();
    let (job_title, company) = match item.preview.split_once(", ") {
        Some((j, c)) => (j.to_owned(), c.to_owned()),
        None => (String::new(), item.preview.clone()),
    };
    domain::writes::ContactDraft { given_name, surname, email: domain::EmailAddress::parse(&item.subtitle).ok(), phone, company, job_title }
}

/// A bar per resource while a mailbox's first sync runs (none once it is done). Microsoft reports
/// totals for mail folders only; the others count up under an indeterminate bar; finished ones
/// show full.
fn first_sync_progress(status: &MailboxStatus, expected: &[Resource]) -> Vec<ProgressRow> {
    let of = |r: Resource| status.resources.iter().find(|s| s.resource == r);
    if expected.iter().all(|r| of(*r).is_some_and(|s| s.first_sync_done)) {
        return Vec::new();
    }
    expected
        .iter()
        .map(|&resource| match of(resource) {
            Some(s) if s.first_sync_done => ProgressRow { resource, done: s.items, total: s.items, finished: true },
            Some(s) => match s.progress() {
                Some((done, total)) => ProgressRow { resource, done, total, finished: false },
                None => ProgressRow { resource, done: s.items, total: 0, finished: false },
            },
            None => ProgressRow { resource, done: 0, total: 0, finished: false },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::sync::SyncedItem;

    fn item(title: &str, subtitle: &str, preview: &str, data: &str) -> SyncedItem {
        SyncedItem {
            graph_id: "id-1".into(),
            container: "list-1".into(),
            title: title.into(),
            subtitle: subtitle.into(),
            preview: preview.into(),
            occurred_at: Some(60),
            data: data.into(),
        }
    }

    #[test]
    fn rows_carry_what_their_actions_need() {
        let me = vec!["alice@northwind.test".to_string()];
        let mine = activity_row(Resource::Calendar, item("Review", "Alice Anders <Alice@Northwind.test>", "Room 4", "{}"), &me);
        assert!(mine.organizer && !mine.done, "her own meeting, by address whatever the case");
        assert_eq!((mine.id.as_str(), mine.container.as_str()), ("id-1", "list-1"));
        let invited = activity_row(Resource::Calendar, item("Review", "Bob <bob@northwind.test>", "", r#"{"isCancelled":true}"#), &me);
        assert!(!invited.organizer && invited.done);
        assert!(activity_row(Resource::Tasks, item("Call back", "completed", "normal", "{}"), &me).done);
        assert!(!activity_row(Resource::Tasks, item("Call back", "notStarted", "normal", "{}"), &me).done);
        assert_eq!(activity_row(Resource::Mail, item("Hi", "", "", "not json"), &me).contact, None);
    }

    #[test]
    fn a_contacts_edit_form_starts_from_its_synced_fields() {
        let row = activity_row(
            Resource::Contacts,
            item("Yuki van Tanaka", "yuki@contoso.test", "Buyer, Contoso", r#"{"mobilePhone":null,"businessPhones":["+1 555 0100"]}"#),
            &[],
        );
        let c = row.contact.unwrap();
        assert_eq!((c.given_name.as_str(), c.surname.as_str()), ("Yuki", "van Tanaka"));
        assert_eq!(c.email.unwrap().as_str(), "yuki@contoso.test");
        assert_eq!((c.phone.as_str(), c.job_title.as_str(), c.company.as_str()), ("+1 555 0100", "Buyer", "Contoso"));
        let bare = activity_row(Resource::Contacts, item("Cher", "", "Contoso", "{}"), &[]).contact.unwrap();
        assert_eq!((bare.given_name.as_str(), bare.surname.as_str(), bare.company.as_str()), ("Cher", "", "Contoso"));
        assert_eq!(bare.email, None);
    }
}
