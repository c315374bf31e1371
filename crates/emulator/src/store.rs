//! Mailbox state: generated items plus an overlay of changes, and a change log for delta.
//!
//! An item is addressed by (kind, n): n < generated count means "generated", larger n were added later.
//! Each change bumps the mailbox sequence number and appends a log entry naming the containers it
//! touched (a move touches the old and the new folder), which is exactly what a per-folder delta round
//! needs to emit updates and `@removed` entries (MICROSOFT.md §3.3).

use crate::generate::{self, Kind, MailboxCtx};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// Navigation properties stored with an item but returned only when a request `$expand`s them.
pub(crate) const HIDDEN: &[&str] = &["singleValueExtendedProperties", "linkedResources"];

#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    pub deleted: bool,
    pub container: Option<String>,
    pub patch: Map<String, Value>,
    /// Full body of items that were added (not generated).
    pub base: Option<Value>,
    pub version: u32,
}

#[derive(serde::Serialize)]
struct MessageEnvelope<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'a str,
    #[serde(rename = "@odata.etag")]
    etag: &'a str,
    id: &'a str,
    #[serde(flatten)]
    message: &'a generate::GenMessage,
    #[serde(rename = "changeKey")]
    change_key: &'a str,
    #[serde(rename = "parentFolderId")]
    parent_folder_id: &'a str,
}

#[derive(Clone, Debug)]
pub(crate) struct ChangeEntry {
    pub seq: u64,
    pub kind: Kind,
    pub n: u64,
    pub containers: Vec<String>,
}

pub(crate) struct MailboxState {
    pub ctx: MailboxCtx,
    pub seq: u64,
    /// Bumped to evict all sync state: tokens of an older epoch answer 410 SyncStateNotFound.
    pub epoch: u32,
    overlays: HashMap<(Kind, u64), Overlay>,
    next: HashMap<Kind, u64>,
    pub log: Vec<ChangeEntry>,
    /// Changes not yet offered to change-notification subscriptions (drained by `subscriptions::flush`).
    pub outbox: Vec<(ChangeEntry, &'static str)>,
    /// Latest sync-state generation per delta collection (see `graph::delta`).
    pub generations: HashMap<String, u64>,
}

/// One calendarView instance.
pub(crate) struct Instance {
    #[allow(dead_code)] // part of the instance identity; useful when debugging
    pub occurrence: Option<u32>,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub json: Value,
}

impl MailboxState {
    pub(crate) fn new(ctx: MailboxCtx) -> MailboxState {
        MailboxState {
            ctx,
            seq: 0,
            epoch: 1,
            overlays: HashMap::new(),
            next: HashMap::new(),
            log: Vec::new(),
            outbox: Vec::new(),
            generations: HashMap::new(),
        }
    }

    pub(crate) fn generated(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Message => self.ctx.counts.messages,
            Kind::Event => self.ctx.counts.events,
            Kind::Contact => self.ctx.counts.contacts,
            Kind::Task => self.ctx.counts.tasks,
        }
    }

    /// One past the highest n that may exist.
    pub(crate) fn upper(&self, kind: Kind) -> u64 {
        self.next.get(&kind).copied().unwrap_or_else(|| self.generated(kind))
    }

    fn default_container(&self, kind: Kind, n: u64) -> &'static str {
        match kind {
            Kind::Message => generate::message_folder(&self.ctx, n),
            Kind::Event => "calendar",
            Kind::Contact => generate::contact_folder(n),
            Kind::Task => generate::task_list(n),
        }
    }

    /// Where the item lives now, or `None` when it does not exist (deleted / never created).
    pub(crate) fn container_of(&self, kind: Kind, n: u64) -> Option<String> {
        match self.overlays.get(&(kind, n)) {
            Some(o) if o.deleted => None,
            Some(o) => Some(o.container.clone().unwrap_or_else(|| self.default_container(kind, n).to_string())),
            None if n < self.generated(kind) => Some(self.default_container(kind, n).to_string()),
            None => None,
        }
    }

    /// Cheap membership test used when paging a container (no JSON built).
    pub(crate) fn is_in(&self, kind: Kind, n: u64, container: &str) -> bool {
        match self.overlays.get(&(kind, n)) {
            Some(o) if o.deleted => false,
            Some(o) => o.container.as_deref().unwrap_or_else(|| self.default_container(kind, n)) == container,
            None => n < self.generated(kind) && self.default_container(kind, n) == container,
        }
    }

    /// Full Graph JSON of a message/contact/task (events: see `event_instances`), without the navigation
    /// properties Graph returns only on `$expand` (see `HIDDEN`).
    pub(crate) fn item_json(&self, kind: Kind, n: u64, immutable: bool) -> Option<Value> {
        let mut v = self.item_full(kind, n, immutable)?;
        if let Value::Object(m) = &mut v {
            for k in HIDDEN {
                m.remove(*k);
            }
        }
        Some(v)
    }

    /// Items of `kind` added or changed after generation (the only ones that can carry extended
    /// properties or a `transactionId`) whose full JSON satisfies `keep`, in n order.
    pub(crate) fn find(&self, kind: Kind, keep: impl Fn(&Value) -> bool) -> Vec<u64> {
        let mut ns: Vec<u64> = self
            .overlays
            .iter()
            .filter(|((k, _), o)| *k == kind && !o.deleted)
            .map(|((_, n), _)| *n)
            .filter(|n| self.item_full(kind, *n, false).is_some_and(|v| keep(&v)))
            .collect();
        ns.sort_unstable();
        ns
    }

    /// Like `item_json`, with the `$expand`-only properties kept.
    pub(crate) fn item_full(&self, kind: Kind, n: u64, immutable: bool) -> Option<Value> {
        let container = self.container_of(kind, n)?;
        let overlay = self.overlays.get(&(kind, n));
        let mut v = match overlay.and_then(|o| o.base.clone()) {
            Some(b) => b,
            None => match kind {
                Kind::Message => generate::message(&self.ctx, n, &container),
                Kind::Event => generate::event(&self.ctx, n),
                Kind::Contact => generate::contact(&self.ctx, n),
                Kind::Task => generate::task(&self.ctx, n),
            },
        };
        let version = overlay.map(|o| o.version).unwrap_or(0);
        if let (Some(o), Value::Object(map)) = (overlay, &mut v) {
            for (k, val) in &o.patch {
                if val.is_null() {
                    // A property cleared by an update (e.g. a reopened task's completedDateTime).
                    map.remove(k);
                } else {
                    map.insert(k.clone(), val.clone());
                }
            }
        }
        let id = generate::item_id(self.ctx.hash, kind, n, None, &container, immutable);
        let mut out = Map::new();
        let odata_type = match kind {
            Kind::Message => "#microsoft.graph.message",
            Kind::Event => "#microsoft.graph.event",
            Kind::Contact => "#microsoft.graph.contact",
            Kind::Task => "#microsoft.graph.todoTask",
        };
        out.insert("@odata.type".into(), json!(odata_type));
        out.insert("@odata.etag".into(), json!(generate::etag(version, n)));
        out.insert("id".into(), json!(id));
        if let Value::Object(map) = v {
            out.extend(map);
        }
        if kind != Kind::Task {
            out.insert("changeKey".into(), json!(generate::change_key(version, n)));
        }
        match kind {
            Kind::Message => {
                out.insert("parentFolderId".into(), json!(generate::folder_id(self.ctx.hash, &container)));
            }
            Kind::Contact => {
                out.insert("parentFolderId".into(), json!(generate::folder_id(self.ctx.hash, &container)));
            }
            _ => {}
        }
        Some(Value::Object(out))
    }

    /// Appends item `n` as JSON to `out`; generated, untouched messages take a fast path that serializes
    /// the typed message directly (no `Value` tree).
    pub(crate) fn write_item(&self, kind: Kind, n: u64, immutable: bool, out: &mut Vec<u8>) -> bool {
        if kind == Kind::Message && n < self.generated(kind) && !self.overlays.contains_key(&(kind, n)) {
            let folder = generate::message_folder(&self.ctx, n);
            let msg = generate::message_typed(&self.ctx, n, folder);
            let env = MessageEnvelope {
                odata_type: "#microsoft.graph.message",
                etag: &generate::etag(0, n),
                id: &generate::item_id(self.ctx.hash, kind, n, None, folder, immutable),
                message: &msg,
                change_key: &generate::change_key(0, n),
                parent_folder_id: &generate::folder_id(self.ctx.hash, folder),
            };
            return serde_json::to_writer(out, &env).is_ok();
        }
        match self.item_json(kind, n, immutable) {
            Some(v) => serde_json::to_writer(out, &v).is_ok(),
            None => false,
        }
    }

    /// The calendarView instances of event `n`: single instance, or the occurrences and exceptions of a
    /// series (the master itself is not part of a calendar view, MICROSOFT.md §3.4).
    pub(crate) fn event_instances(&self, n: u64, immutable: bool) -> Vec<Instance> {
        let Some(master) = self.item_json(Kind::Event, n, immutable) else {
            return Vec::new();
        };
        let master_id = master.get("id").cloned().unwrap_or(Value::Null);
        let start = master.pointer("/start/dateTime").and_then(Value::as_str).and_then(generate::parse_datetime);
        let end = master.pointer("/end/dateTime").and_then(Value::as_str).and_then(generate::parse_datetime);
        let (Some(start), Some(end)) = (start, end) else {
            return Vec::new();
        };
        let generated_series =
            n < self.generated(Kind::Event) && self.overlays.get(&(Kind::Event, n)).and_then(|o| o.base.as_ref()).is_none();
        let plan = if generated_series { Some(generate::event_plan(&self.ctx, n)) } else { None };
        let occurrences = plan.as_ref().map(|p| p.occurrences).unwrap_or(1);
        if occurrences <= 1 {
            let mut json = master;
            if let Value::Object(m) = &mut json {
                m.insert("type".into(), json!("singleInstance"));
                m.insert("seriesMasterId".into(), Value::Null);
            }
            return vec![Instance { occurrence: None, start, end, json }];
        }
        let mut out = Vec::new();
        for k in 0..occurrences {
            if plan.as_ref().and_then(|p| p.cancelled) == Some(k) {
                continue;
            }
            let exception = plan.as_ref().and_then(|p| p.exception) == Some(k);
            let shift = Duration::days(7 * i64::from(k)) + if exception { Duration::hours(1) } else { Duration::ZERO };
            let (s, e) = (start + shift, end + shift);
            let mut json = master.clone();
            if let Value::Object(m) = &mut json {
                let container = "calendar";
                m.insert("id".into(), json!(generate::item_id(self.ctx.hash, Kind::Event, n, Some(k), container, immutable)));
                m.insert("type".into(), json!(if exception { "exception" } else { "occurrence" }));
                m.insert("seriesMasterId".into(), master_id.clone());
                m.insert("recurrence".into(), Value::Null);
                m.insert("start".into(), json!({"dateTime": generate::zoned_datetime(s), "timeZone": "UTC"}));
                m.insert("end".into(), json!({"dateTime": generate::zoned_datetime(e), "timeZone": "UTC"}));
                if exception {
                    let subject = m.get("subject").and_then(Value::as_str).unwrap_or("").to_string();
                    m.insert("subject".into(), json!(format!("{subject} (moved)")));
                }
            }
            out.push(Instance { occurrence: Some(k), start: s, end: e, json });
        }
        out
    }

    /// All instance ids event `n` could ever have had (for `@removed` entries).
    pub(crate) fn event_instance_ids(&self, n: u64, immutable: bool) -> Vec<String> {
        let series = n < self.generated(Kind::Event) && generate::event_plan(&self.ctx, n).occurrences > 1;
        if series {
            (0..6).map(|k| generate::item_id(self.ctx.hash, Kind::Event, n, Some(k), "calendar", immutable)).collect()
        } else {
            vec![generate::item_id(self.ctx.hash, Kind::Event, n, None, "calendar", immutable)]
        }
    }

    fn record(&mut self, kind: Kind, n: u64, containers: Vec<String>, change: &'static str) -> u64 {
        self.seq += 1;
        let entry = ChangeEntry { seq: self.seq, kind, n, containers };
        self.outbox.push((entry.clone(), change));
        self.log.push(entry);
        self.seq
    }

    /// Adds an item to `container`; `fields` is its Graph JSON body.
    pub(crate) fn add(&mut self, kind: Kind, container: &str, fields: Value, now: OffsetDateTime) -> u64 {
        let n = self.upper(kind);
        self.next.insert(kind, n + 1);
        let mut base = fields;
        if let Value::Object(m) = &mut base {
            let stamp = json!(generate::graph_datetime(now));
            m.entry("createdDateTime").or_insert(stamp.clone());
            m.insert("lastModifiedDateTime".into(), stamp);
        }
        self.overlays.insert((kind, n), Overlay { container: Some(container.to_string()), base: Some(base), ..Overlay::default() });
        self.record(kind, n, vec![container.to_string()], "created");
        n
    }

    /// Merges `patch` into the item; `None` if it does not exist.
    pub(crate) fn update(&mut self, kind: Kind, n: u64, patch: Map<String, Value>, now: OffsetDateTime) -> Option<()> {
        let container = self.container_of(kind, n)?;
        let o = self.overlays.entry((kind, n)).or_default();
        for (k, v) in patch {
            o.patch.insert(k, v);
        }
        o.patch.insert("lastModifiedDateTime".into(), json!(generate::graph_datetime(now)));
        o.version += 1;
        self.record(kind, n, vec![container], "updated");
        Some(())
    }

    pub(crate) fn delete(&mut self, kind: Kind, n: u64) -> Option<()> {
        let container = self.container_of(kind, n)?;
        let o = self.overlays.entry((kind, n)).or_default();
        o.deleted = true;
        o.version += 1;
        self.record(kind, n, vec![container], "deleted");
        Some(())
    }

    pub(crate) fn move_to(&mut self, kind: Kind, n: u64, to: &str, now: OffsetDateTime) -> Option<()> {
        let from = self.container_of(kind, n)?;
        let o = self.overlays.entry((kind, n)).or_default();
        o.container = Some(to.to_string());
        o.patch.insert("lastModifiedDateTime".into(), json!(generate::graph_datetime(now)));
        o.version += 1;
        self.record(kind, n, vec![from, to.to_string()], "moved");
        Some(())
    }

    /// When message `n` was received (cheap for untouched generated messages).
    pub(crate) fn received_at(&self, n: u64) -> Option<OffsetDateTime> {
        match self.overlays.get(&(Kind::Message, n)) {
            None if n < self.generated(Kind::Message) => Some(generate::message_received(&self.ctx, n)),
            None => None,
            Some(o) if o.deleted => None,
            Some(o) if o.base.is_none() && !o.patch.contains_key("receivedDateTime") => Some(generate::message_received(&self.ctx, n)),
            Some(_) => self
                .item_json(Kind::Message, n, false)
                .and_then(|v| v.get("receivedDateTime").and_then(Value::as_str).and_then(generate::parse_datetime)),
        }
    }

    /// Like `page`, keeping only items for which `keep` holds.
    pub(crate) fn page_where(&self, kind: Kind, container: &str, after: Option<u64>, limit: usize, keep: impl Fn(u64) -> bool) -> Vec<u64> {
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut n = after.map(|a| a + 1).unwrap_or(0);
        let upper = self.upper(kind);
        while n < upper && out.len() < limit {
            if self.is_in(kind, n, container) && keep(n) {
                out.push(n);
            }
            n += 1;
        }
        out
    }

    /// Items of `kind` in `container` with n > `after` (or from the start), at most `limit`, in n order.
    pub(crate) fn page(&self, kind: Kind, container: &str, after: Option<u64>, limit: usize) -> Vec<u64> {
        self.page_where(kind, container, after, limit, |_| true)
    }

    pub(crate) fn count_in(&self, kind: Kind, container: &str) -> (u64, u64) {
        let mut total = 0;
        let mut unread = 0;
        for n in 0..self.upper(kind) {
            if self.is_in(kind, n, container) {
                total += 1;
                if kind == Kind::Message {
                    let read = match self.overlays.get(&(kind, n)) {
                        Some(o) if o.patch.contains_key("isRead") || o.base.is_some() => {
                            self.item_json(kind, n, false).and_then(|v| v.get("isRead").and_then(Value::as_bool)).unwrap_or(true)
                        }
                        _ => {
                            // Cheap path: generated read flag without building the body twice.
                            generate::message_read(&self.ctx, n, container)
                        }
                    };
                    if !read {
                        unread += 1;
                    }
                }
            }
        }
        (total, unread)
    }

    /// Distinct (kind, n) changed in (since, upto] touching `container` (any container when `None`),
    /// sorted by n.
    pub(crate) fn changes(&self, kind: Kind, container: Option<&str>, since: u64, upto: u64) -> Vec<u64> {
        let start = self.log.partition_point(|e| e.seq <= since);
        let mut ns: Vec<u64> = self.log[start..]
            .iter()
            .take_while(|e| e.seq <= upto)
            .filter(|e| e.kind == kind && container.is_none_or(|c| e.containers.iter().any(|x| x == c)))
            .map(|e| e.n)
            .collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    }

    /// Containers touched by message changes in (since, upto] (mail folder delta).
    pub(crate) fn changed_containers(&self, kind: Kind, since: u64, upto: u64) -> Vec<String> {
        let start = self.log.partition_point(|e| e.seq <= since);
        let mut out: Vec<String> = self.log[start..]
            .iter()
            .take_while(|e| e.seq <= upto)
            .filter(|e| e.kind == kind)
            .flat_map(|e| e.containers.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Resolves an id (regular or immutable) of this mailbox to (kind, n).
    pub(crate) fn resolve(&self, id: &str) -> Option<(Kind, u64)> {
        let p = generate::parse_item_id(id)?;
        if p.mailbox != self.ctx.hash {
            return None;
        }
        // A regular id names the folder the item was in; after a move it is stale (Outlook semantics).
        if let Some(c) = &p.container
            && p.kind == Kind::Message
            && self.container_of(p.kind, p.n).as_deref() != Some(c.as_str())
        {
            return None;
        }
        self.container_of(p.kind, p.n)?;
        Some((p.kind, p.n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::MailboxCounts;

    fn state() -> MailboxState {
        MailboxState::new(MailboxCtx {
            seed: 1,
            hash: 77,
            upn: "a@x.test".into(),
            display_name: "A B".into(),
            domain: "x.test".into(),
            counts: MailboxCounts { messages: 100, events: 10, contacts: 5, tasks: 4 },
            anchor: OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        })
    }

    #[test]
    fn move_changes_regular_id_but_not_immutable_id_and_logs_both_folders() {
        let mut s = state();
        let n = s.page(Kind::Message, "inbox", None, 1)[0];
        let before = s.item_json(Kind::Message, n, false).unwrap()["id"].clone();
        let imm = s.item_json(Kind::Message, n, true).unwrap()["id"].clone();
        s.move_to(Kind::Message, n, "archive", OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_ne!(s.item_json(Kind::Message, n, false).unwrap()["id"], before);
        assert_eq!(s.item_json(Kind::Message, n, true).unwrap()["id"], imm);
        assert_eq!(s.changes(Kind::Message, Some("inbox"), 0, s.seq), vec![n]);
        assert_eq!(s.changes(Kind::Message, Some("archive"), 0, s.seq), vec![n]);
        assert!(s.resolve(before.as_str().unwrap()).is_none(), "stale regular id");
        assert_eq!(s.resolve(imm.as_str().unwrap()), Some((Kind::Message, n)));
    }

    #[test]
    fn added_and_deleted_items_change_paging() {
        let mut s = state();
        let before = s.page(Kind::Contact, "contacts", None, 100).len();
        let n = s.add(Kind::Contact, "contacts", json!({"displayName": "New"}), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(s.page(Kind::Contact, "contacts", None, 100).len(), before + 1);
        s.delete(Kind::Contact, n).unwrap();
        assert_eq!(s.page(Kind::Contact, "contacts", None, 100).len(), before);
        assert!(s.update(Kind::Contact, n, Map::new(), OffsetDateTime::UNIX_EPOCH).is_none());
    }

    #[test]
    fn expand_only_properties_are_hidden_found_and_cleared_by_null_patches() {
        let mut s = state();
        let props = json!([{"id": "String {00000000-0000-0000-0000-000000000001} Name K", "value": "v"}]);
        let n = s.add(
            Kind::Task,
            "tasks",
            json!({"title": "t", "linkedResources": [], "singleValueExtendedProperties": props}),
            OffsetDateTime::UNIX_EPOCH,
        );
        let shown = s.item_json(Kind::Task, n, false).unwrap();
        assert!(shown.get("singleValueExtendedProperties").is_none() && shown.get("linkedResources").is_none());
        assert!(s.item_full(Kind::Task, n, false).unwrap().get("linkedResources").is_some());
        assert_eq!(s.find(Kind::Task, |v| v.get("singleValueExtendedProperties").is_some()), vec![n]);
        let mut patch = Map::new();
        patch.insert("title".into(), Value::Null);
        s.update(Kind::Task, n, patch, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert!(s.item_json(Kind::Task, n, false).unwrap().get("title").is_none());
        s.delete(Kind::Task, n).unwrap();
        assert!(s.find(Kind::Task, |_| true).is_empty(), "deleted items are not found");
    }

    #[test]
    fn fast_message_writer_matches_the_value_path() {
        let s = state();
        for n in 0..20 {
            let mut buf = Vec::new();
            assert!(s.write_item(Kind::Message, n, n % 2 == 0, &mut buf));
            let fast: Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(fast, s.item_json(Kind::Message, n, n % 2 == 0).unwrap());
        }
    }

    #[test]
    fn recurring_series_expands_to_occurrences_and_an_exception() {
        let s = state();
        let inst = s.event_instances(0, false);
        assert_eq!(inst.len(), 5, "6 weekly occurrences minus one cancelled");
        assert!(inst.iter().any(|i| i.json["type"] == "exception"));
        assert!(inst.iter().all(|i| i.json["seriesMasterId"].is_string()));
        assert_eq!(s.event_instances(1, false)[0].json["type"], "singleInstance");
    }
}
