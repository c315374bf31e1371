use super::mail::{self, folder_json};
use super::mailbox::Call;
use super::todo::list_json;
use super::*;
use crate::store::MailboxState;
use std::collections::HashMap;

// ------------------------------------------------------------------ delta

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Res {
    Messages,
    Events,
    Contacts,
    Tasks,
    Folders,
    Lists,
}

impl Res {
    pub(super) fn kind(self) -> Kind {
        match self {
            Res::Messages | Res::Folders => Kind::Message,
            Res::Events => Kind::Event,
            Res::Contacts => Kind::Contact,
            Res::Tasks | Res::Lists => Kind::Task,
        }
    }
    fn entity(self) -> &'static str {
        match self {
            Res::Messages => "message",
            Res::Events => "event",
            Res::Contacts => "contact",
            Res::Tasks => "todoTask",
            Res::Folders => "mailFolder",
            Res::Lists => "todoTaskList",
        }
    }
}

/// Everything a delta link must remember: the original query travels inside the token (§3.3: "All params
/// only on the first call — they're encoded in the tokens").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DeltaState {
    r: Res,
    /// mailbox (user id), container key
    m: String,
    c: String,
    /// sync-state epoch; eviction bumps the mailbox's epoch → 410
    e: u32,
    /// phase: 0 = initial enumeration, 1 = changes since `s`
    p: u8,
    s: u64,
    u: u64,
    /// resume after this item number
    k: Option<u64>,
    sel: Option<String>,
    top: Option<usize>,
    /// calendarView window (unix seconds)
    w: Option<(i64, i64)>,
    /// message `$filter=receivedDateTime ge|gt …`: (strictly greater?, unix seconds)
    #[serde(default)]
    f: Option<(bool, i64)>,
    /// sync-state generation of the round this token belongs to
    #[serde(default)]
    g: u64,
}

/// The only `$filter` message delta supports: `receivedDateTime ge|gt {value}` (§3.3).
pub(super) fn received_filter(f: &str) -> Option<(bool, i64)> {
    let mut parts = f.split_whitespace();
    let (prop, op, value) = (parts.next()?, parts.next()?, parts.next()?);
    if !prop.eq_ignore_ascii_case("receivedDateTime") || parts.next().is_some() {
        return None;
    }
    let gt = match op.to_ascii_lowercase().as_str() {
        "ge" => false,
        "gt" => true,
        _ => return None,
    };
    Some((gt, generate::parse_datetime(value.trim_matches('\''))?.unix_timestamp()))
}

pub(super) fn delta(call: &Call, res: Res, container: &str) -> GResp {
    let q = parse_qs(&call.req.query);
    let arc = call.mailbox();
    let mut mb = lock(&arc);
    let gens = Generations::of(&mb, call, res, container);
    let st = match q.get("$deltatoken").or_else(|| q.get("$skiptoken")) {
        Some(t) => resume(call, &mut mb, &gens, t, q.contains_key("$deltatoken"), (res, container)),
        None => start(call, &mut mb, &gens, &q, res, container),
    };
    let mut st = match st {
        Ok(st) => st,
        Err(r) => return r,
    };
    let size = call.page_pref.or(st.top).unwrap_or(call.shared.opts.delta_default_page_size).clamp(1, 1000);
    let mut page = Page { call, mb: &mb, size, items: Items::default(), more: false };
    page.fill(&mut st);
    let (items, more) = (page.items, page.more);
    drop(mb);
    respond(call, &st, (items, more), size)
}

/// Sync-state generations per collection: every round (initial or from a deltaLink) is a new one, and
/// Outlook keeps only a few (OBS, §3.3), so stale links of older rounds answer 410 too.
struct Generations {
    key: String,
    highest: u64,
}

impl Generations {
    fn of(mb: &MailboxState, call: &Call, res: Res, container: &str) -> Generations {
        let key = format!("{}|{res:?}:{container}", call.stream());
        let highest = mb.generations.get(&key).copied().unwrap_or(0);
        Generations { key, highest }
    }

    /// Starts the next round.
    fn next(&self, mb: &mut MailboxState) -> u64 {
        mb.generations.insert(self.key.clone(), self.highest + 1);
        self.highest + 1
    }

    fn gone(&self, ctx: &Ctx, generation: u64) -> GResp {
        let highest = self.highest;
        let recent: Vec<String> = (0..3u64).filter_map(|i| highest.checked_sub(i)).map(|g| format!("[{g}]")).collect();
        err(
            ctx,
            410,
            "SyncStateNotFound",
            &format!("The sync state generation is not found; generation={generation};[highest={highest}]{}.", recent.concat()),
        )
    }
}

/// A link's token: the state it carries, or the error for a token that is not (or no longer) valid.
fn resume(
    call: &Call,
    mb: &mut MailboxState,
    gens: &Generations,
    token: &str,
    new_round: bool,
    (res, container): (Res, &str),
) -> Result<DeltaState, GResp> {
    let Some(mut st) = decode_token::<DeltaState>(token) else {
        return Err(undecodable(call));
    };
    let kept = call.shared.opts.sync_generations_kept;
    if st.m != call.user.user.id
        || st.r != res
        || st.c != container
        || st.e != mb.epoch
        || kept.is_some_and(|k| gens.highest.saturating_sub(st.g) >= u64::from(k))
    {
        return Err(gens.gone(call.ctx, st.g));
    }
    if new_round {
        // A new round: everything after the previous round's snapshot, up to now.
        st.p = 1;
        st.k = None;
        st.u = mb.seq;
        st.g = gens.next(mb);
    }
    Ok(st)
}

/// A token that does not decode: `SyncStateInvalid`, with 410 Gone (default) or 400
/// (`ProtocolOptions::undecodable_delta_token_status`).
///
/// Microsoft's documentation does not say what a malformed Outlook delta token gets: the errors page
/// lists only `resyncRequired` and `syncStateNotFound`, the delta-query overview answers an expired
/// token with 410 Gone, and directory resources answer an expired one with 400 `syncStateNotFound`
/// (Microsoft 365 Developer Blog, 2020-07-03). Public Outlook clients see `SyncStateInvalid` with 410
/// (e.g. ruby_outlook's client, a Nango Outlook sync fixture; Corso resyncs on the code alone), so 410
/// is the default and 400 a switch for clients that must survive either. The message is the
/// emulator's own wording.
fn undecodable(call: &Call) -> GResp {
    let status = if call.shared.opts.undecodable_delta_token_status == 400 { 400 } else { 410 };
    err(call.ctx, status, "SyncStateInvalid", "The sync state is invalid. The delta token cannot be read; synchronize again.")
}

/// The first call of a round without a token: the query is checked and encoded in the state.
fn start(
    call: &Call,
    mb: &mut MailboxState,
    gens: &Generations,
    q: &HashMap<String, String>,
    res: Res,
    container: &str,
) -> Result<DeltaState, GResp> {
    let ctx = call.ctx;
    let opts = &call.shared.opts;
    let w = if res == Res::Events { Some(window(ctx, q)?) } else { None };
    let top = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => None,
        Some(Ok(n)) if n >= 1 => Some(n),
        Some(_) => {
            let msg = "The value of the $top query parameter is invalid.";
            return Err(err(ctx, 400, "ErrorInvalidUrlQuery", msg));
        }
    };
    // Real Graph pages message delta by `Prefer: odata.maxpagesize` only (§7).
    let top = top.filter(|_| !(res == Res::Messages && opts.ignore_top_on_message_delta));
    // calendarView delta takes no `$select` (§3.4); To Do tasks delta ignores it on real Graph (§7).
    let ignores_select = res == Res::Events || (res == Res::Tasks && opts.ignore_select_on_tasks);
    let sel = q.get("$select").cloned().filter(|_| !ignores_select);
    let f = match (res, q.get("$filter")) {
        (Res::Messages, Some(f)) => Some(received_filter(f).ok_or_else(|| {
            let msg = "The query filter contains one or more invalid nodes.";
            err(ctx, 400, "ErrorInvalidUrlQueryFilter", msg)
        })?),
        _ => None,
    };
    Ok(DeltaState {
        g: gens.next(mb),
        r: res,
        m: call.user.user.id.clone(),
        c: container.to_string(),
        e: mb.epoch,
        p: 0,
        s: 0,
        u: mb.seq,
        k: None,
        sel,
        top,
        w,
        f,
    })
}

/// The calendarView window, required on the first call (§3.4).
fn window(ctx: &Ctx, q: &HashMap<String, String>) -> Result<(i64, i64), GResp> {
    let at = |a: &str, b: &str| q.get(a).or_else(|| q.get(b)).and_then(|s| generate::parse_datetime(s));
    match (at("startDateTime", "StartDateTime"), at("endDateTime", "EndDateTime")) {
        (Some(s), Some(e)) if s < e => Ok((s.unix_timestamp(), e.unix_timestamp())),
        _ => Err(err(
            ctx,
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )),
    }
}

/// The page as Graph writes it, with a nextLink (more to come) or a deltaLink (round complete).
fn respond(call: &Call, st: &DeltaState, (items, more): (Items, bool), size: usize) -> GResp {
    let base = &call.shared.base_url;
    let path = format!("{base}/v1.0{}", call.req.path);
    // Assembled as text: the items are already serialized JSON.
    let mut text = String::with_capacity(items.buf.len() + 512);
    text.push_str("{\"@odata.context\":");
    let context = format!("{base}/v1.0/$metadata#Collection({})", st.r.entity());
    text.push_str(&json!(context).to_string());
    let request = if call.req.query.is_empty() { path.clone() } else { format!("{path}?{}", call.req.query) };
    let resume = format!("{path}?$skiptoken={}", encode_token(st));
    if let Some(looped) = crate::link_loop::looped_next_link(call.shared, &request, &resume) {
        text.push_str(",\"@odata.nextLink\":");
        text.push_str(&json!(looped).to_string());
    } else if more {
        text.push_str(",\"@odata.nextLink\":");
        text.push_str(&json!(resume).to_string());
    } else {
        let next = DeltaState { p: 1, s: st.u, k: None, ..st.clone() };
        text.push_str(",\"@odata.deltaLink\":");
        text.push_str(&json!(format!("{path}?$deltatoken={}", encode_token(&next))).to_string());
    }
    text.push_str(",\"value\":[");
    text.push_str(&String::from_utf8_lossy(&items.buf));
    text.push_str("]}");
    let r = GResp { status: 200, headers: Vec::new(), body: Some(text) };
    match call.page_pref {
        Some(_) => r.header("Preference-Applied", format!("odata.maxpagesize={size}")),
        None => r,
    }
}

/// One page being filled from the mailbox.
struct Page<'a> {
    call: &'a Call<'a>,
    mb: &'a MailboxState,
    size: usize,
    items: Items,
    more: bool,
}

impl Page<'_> {
    fn fill(&mut self, st: &mut DeltaState) {
        match (st.r, st.p) {
            (Res::Folders, 0) => {
                for f in MAIL_FOLDERS {
                    self.items.push(&folder_json(self.mb, f.key));
                }
            }
            (Res::Folders, _) => {
                for c in self
                    .mb
                    .changed_containers(Kind::Message, st.s, st.u)
                    .iter()
                    .filter(|c| MAIL_FOLDERS.iter().any(|f| f.key == c.as_str()))
                {
                    self.items.push(&folder_json(self.mb, c));
                }
            }
            (Res::Lists, 0) => {
                for l in TASK_LISTS.iter().filter_map(|l| list_json(self.mb, l.0)) {
                    self.items.push(&l);
                }
            }
            (Res::Lists, _) => {}
            (Res::Events, 0) => self.events_initial(st),
            (Res::Events, _) => self.events_changed(st),
            (_, 0) => self.items_initial(st),
            (_, _) => self.items_changed(st),
        }
    }

    fn removed(st: &DeltaState, id: String) -> Value {
        json!({"@odata.type": format!("#microsoft.graph.{}", st.r.entity()), "id": id, "@removed": {"reason": "deleted"}})
    }

    fn in_window(st: &DeltaState, i: &crate::store::Instance) -> bool {
        st.w.is_some_and(|(s, e)| i.start.unix_timestamp() < e && i.end.unix_timestamp() > s)
    }

    /// Pages over events; a series contributes all its in-window instances at once.
    fn events_initial(&mut self, st: &mut DeltaState) {
        let immutable = self.call.immutable;
        if let Some(k) = st.k.filter(|_| self.call.shared.opts.repeat_calendar_items_across_pages) {
            // Real calendarView delta can repeat an item of the previous page (§7): the last one, again.
            if let Some(inst) = self.mb.event_instances(k, immutable).into_iter().rfind(|i| Self::in_window(st, i)) {
                self.items.push(&inst.json);
            }
        }
        let mut n = st.k.map(|k| k + 1).unwrap_or(0);
        let upper = self.mb.upper(Kind::Event);
        let floor = self.items.count;
        while n < upper {
            if self.items.count - floor >= self.size {
                self.more = true;
                break;
            }
            for inst in self.mb.event_instances(n, immutable) {
                if Self::in_window(st, &inst) {
                    self.items.push(&inst.json);
                }
            }
            st.k = Some(n);
            n += 1;
        }
    }

    /// Changed events: in-window instances, and removals for the ones no longer there (also changes
    /// that left the window, §3.4).
    fn events_changed(&mut self, st: &mut DeltaState) {
        let (mb, immutable) = (self.mb, self.call.immutable);
        let changed = mb.changes(Kind::Event, None, st.s, st.u);
        let start = st.k.map(|k| changed.partition_point(|n| *n <= k)).unwrap_or(0);
        for &n in &changed[start..] {
            if self.items.count >= self.size {
                self.more = true;
                break;
            }
            let mut present_ids = HashSet::new();
            for inst in mb.event_instances(n, immutable) {
                if Self::in_window(st, &inst) {
                    if let Some(id) = inst.json.get("id").and_then(Value::as_str) {
                        present_ids.insert(id.to_string());
                    }
                    self.items.push(&inst.json);
                }
            }
            let mut ids = mb.event_instance_ids(n, immutable);
            if n >= mb.generated(Kind::Event) || ids.len() == 1 {
                let id = generate::item_id(mb.ctx.hash, Kind::Event, n, None, "calendar", immutable);
                ids = vec![id];
            }
            for id in ids.into_iter().filter(|id| !present_ids.contains(id)) {
                self.items.push(&Self::removed(st, id));
            }
            st.k = Some(n);
        }
    }

    /// Does item `n` pass the message `$filter` of this round?
    fn kept(&self, st: &DeltaState, n: u64) -> bool {
        st.f.is_none_or(|(gt, t)| {
            self.mb.received_at(n).is_some_and(|r| {
                let r = r.unix_timestamp();
                if gt { r > t } else { r >= t }
            })
        })
    }

    /// The item as this client may see it (`$select`, and no body under `Mail.ReadBasic`).
    fn push_item(&mut self, st: &DeltaState, n: u64) {
        let (kind, immutable) = (st.r.kind(), self.call.immutable);
        let basic = kind == Kind::Message && !self.call.grant.full_mail_read(self.call.caller.is_some());
        if st.sel.is_none() && !basic {
            let mb = self.mb;
            self.items.raw(|out| mb.write_item(kind, n, immutable, out));
        } else if let Some(v) = self.mb.item_json(kind, n, immutable) {
            let v = select(v, st.sel.as_ref());
            self.items.push(&if basic { mail::without_body(v) } else { v });
        }
    }

    fn items_initial(&mut self, st: &mut DeltaState) {
        let ns = self.mb.page_where(st.r.kind(), &st.c, st.k, self.size + 1, |n| self.kept(st, n));
        self.more = ns.len() > self.size;
        for &n in ns.iter().take(self.size) {
            self.push_item(st, n);
            st.k = Some(n);
        }
    }

    fn items_changed(&mut self, st: &mut DeltaState) {
        let (mb, kind) = (self.mb, st.r.kind());
        let changed = mb.changes(kind, Some(&st.c), st.s, st.u);
        let start = st.k.map(|k| changed.partition_point(|n| *n <= k)).unwrap_or(0);
        let slice = &changed[start..];
        self.more = slice.len() > self.size;
        for &n in slice.iter().take(self.size) {
            let present = mb.is_in(kind, n, &st.c);
            if present && self.kept(st, n) {
                self.push_item(st, n);
            } else if !present {
                // Deleted, or moved to another folder: gone from *this* folder's view.
                let id = generate::item_id(mb.ctx.hash, kind, n, None, &st.c, self.call.immutable);
                self.items.push(&Self::removed(st, id));
            }
            // Present but outside the filter: not part of this delta's view.
            st.k = Some(n);
        }
    }
}

/// A JSON array body under construction.
#[derive(Default)]
struct Items {
    buf: Vec<u8>,
    count: usize,
}

impl Items {
    fn sep(&mut self) {
        if self.count > 0 {
            self.buf.push(b',');
        }
    }
    fn push(&mut self, v: &Value) {
        self.sep();
        if serde_json::to_writer(&mut self.buf, v).is_ok() {
            self.count += 1;
        }
    }
    fn raw(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let mark = self.buf.len();
        self.sep();
        if write(&mut self.buf) {
            self.count += 1;
        } else {
            self.buf.truncate(mark);
        }
    }
}
