use super::mail::folder_json;
use super::mailbox::Call;
use super::todo::list_json;
use super::*;

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
    Some((
        gt,
        generate::parse_datetime(value.trim_matches('\''))?.unix_timestamp(),
    ))
}

pub(super) fn delta(call: &Call, res: Res, container: &str) -> GResp {
    let (shared, ctx, req, user) = (call.shared, call.ctx, call.req, call.user);
    let (stream, page_pref, immutable) = (call.stream(), call.page_pref, call.immutable);
    let q = parse_qs(&req.query);
    let mb_arc = shared.mailbox(&user.user);
    let mut mb = lock(&mb_arc);
    // Sync-state generations per collection: every round (initial or from a deltaLink) is a new one, and
    // Outlook keeps only a few (OBS, §3.3), so stale links of older rounds answer 410 too.
    let gen_key = format!("{stream}|{res:?}:{container}");
    let highest = mb.generations.get(&gen_key).copied().unwrap_or(0);
    let gone = |ctx: &Ctx, generation: u64| {
        let recent: Vec<String> = (0..3u64)
            .filter_map(|i| highest.checked_sub(i))
            .map(|g| format!("[{g}]"))
            .collect();
        err(
            ctx,
            410,
            "SyncStateNotFound",
            &format!(
                "The sync state generation is not found; generation={generation};[highest={highest}]{}.",
                recent.concat()
            ),
        )
    };
    let kept = shared.opts.sync_generations_kept;
    let mut st = if let Some(t) = q.get("$deltatoken").or_else(|| q.get("$skiptoken")) {
        let Some(mut st) = decode_token::<DeltaState>(t) else {
            return gone(ctx, 0);
        };
        if st.m != user.user.id || st.r != res || st.c != container || st.e != mb.epoch {
            return gone(ctx, st.g);
        }
        if kept.is_some_and(|k| highest.saturating_sub(st.g) >= u64::from(k)) {
            return gone(ctx, st.g);
        }
        if q.contains_key("$deltatoken") {
            // A new round: everything after the previous round's snapshot, up to now.
            st.p = 1;
            st.k = None;
            st.u = mb.seq;
            st.g = highest + 1;
            mb.generations.insert(gen_key.clone(), highest + 1);
        }
        st
    } else {
        let w = if res == Res::Events {
            let start = q
                .get("startDateTime")
                .or_else(|| q.get("StartDateTime"))
                .and_then(|s| generate::parse_datetime(s));
            let end = q
                .get("endDateTime")
                .or_else(|| q.get("EndDateTime"))
                .and_then(|s| generate::parse_datetime(s));
            match (start, end) {
                (Some(s), Some(e)) if s < e => Some((s.unix_timestamp(), e.unix_timestamp())),
                _ => {
                    return err(
                        ctx,
                        400,
                        "ErrorInvalidParameter",
                        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
                    );
                }
            }
        } else {
            None
        };
        let top = match q.get("$top").map(|t| t.parse::<usize>()) {
            None => None,
            Some(Ok(n)) if n >= 1 => Some(n),
            Some(_) => {
                return err(
                    ctx,
                    400,
                    "ErrorInvalidUrlQuery",
                    "The value of the $top query parameter is invalid.",
                );
            }
        };
        let sel = if res == Res::Events {
            None
        } else {
            q.get("$select").cloned()
        };
        let f = match (res, q.get("$filter")) {
            (Res::Messages, Some(f)) => match received_filter(f) {
                Some(f) => Some(f),
                None => {
                    return err(
                        ctx,
                        400,
                        "ErrorInvalidUrlQueryFilter",
                        "The query filter contains one or more invalid nodes.",
                    );
                }
            },
            _ => None,
        };
        mb.generations.insert(gen_key.clone(), highest + 1);
        DeltaState {
            g: highest + 1,
            r: res,
            m: user.user.id.clone(),
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
        }
    };
    let size = page_pref
        .or(st.top)
        .unwrap_or(shared.opts.delta_default_page_size)
        .clamp(1, 1000);
    let kind = res.kind();
    let mut items = Items::default();
    let mut more = false;
    let removed = |id: String| json!({"@odata.type": format!("#microsoft.graph.{}", res.entity()), "id": id, "@removed": {"reason": "deleted"}});
    let in_window = |i: &crate::store::Instance| {
        st.w.is_some_and(|(s, e)| i.start.unix_timestamp() < e && i.end.unix_timestamp() > s)
    };

    match (res, st.p) {
        (Res::Folders, 0) => {
            for f in MAIL_FOLDERS {
                items.push(&folder_json(&mb, f.key));
            }
        }
        (Res::Folders, _) => {
            for c in mb
                .changed_containers(Kind::Message, st.s, st.u)
                .iter()
                .filter(|c| MAIL_FOLDERS.iter().any(|f| f.key == c.as_str()))
            {
                items.push(&folder_json(&mb, c));
            }
        }
        (Res::Lists, 0) => {
            for l in TASK_LISTS.iter().filter_map(|l| list_json(&mb, l.0)) {
                items.push(&l);
            }
        }
        (Res::Lists, _) => {}
        (Res::Events, 0) => {
            // Page over events (a series contributes all its in-window instances at once).
            let mut n = st.k.map(|k| k + 1).unwrap_or(0);
            let upper = mb.upper(Kind::Event);
            while n < upper {
                if items.count >= size {
                    more = true;
                    break;
                }
                for inst in mb.event_instances(n, immutable) {
                    if in_window(&inst) {
                        items.push(&inst.json);
                    }
                }
                st.k = Some(n);
                n += 1;
            }
        }
        (Res::Events, _) => {
            let changed = mb.changes(Kind::Event, None, st.s, st.u);
            let start =
                st.k.map(|k| changed.partition_point(|n| *n <= k))
                    .unwrap_or(0);
            for &n in &changed[start..] {
                if items.count >= size {
                    more = true;
                    break;
                }
                let present = mb.event_instances(n, immutable);
                let mut present_ids = HashSet::new();
                for inst in present {
                    // Changes outside the window are reported as removals too (§3.4).
                    if in_window(&inst) {
                        if let Some(id) = inst.json.get("id").and_then(Value::as_str) {
                            present_ids.insert(id.to_string());
                        }
                        items.push(&inst.json);
                    }
                }
                let mut ids = mb.event_instance_ids(n, immutable);
                if n >= mb.generated(Kind::Event) || ids.len() == 1 {
                    ids = vec![generate::item_id(
                        mb.ctx.hash,
                        Kind::Event,
                        n,
                        None,
                        "calendar",
                        immutable,
                    )];
                }
                for id in ids {
                    if !present_ids.contains(&id) {
                        items.push(&removed(id));
                    }
                }
                st.k = Some(n);
            }
        }
        (_, 0) => {
            let filter = st.f;
            let keep = |n: u64| {
                filter.is_none_or(|(gt, t)| {
                    mb.received_at(n).is_some_and(|r| {
                        if gt {
                            r.unix_timestamp() > t
                        } else {
                            r.unix_timestamp() >= t
                        }
                    })
                })
            };
            let ns = mb.page_where(kind, container, st.k, size + 1, keep);
            more = ns.len() > size;
            for &n in ns.iter().take(size) {
                if st.sel.is_none() {
                    items.raw(|out| mb.write_item(kind, n, immutable, out));
                } else if let Some(v) = mb.item_json(kind, n, immutable) {
                    items.push(&select(v, st.sel.as_ref()));
                }
                st.k = Some(n);
            }
        }
        (_, _) => {
            let changed = mb.changes(kind, Some(container), st.s, st.u);
            let start =
                st.k.map(|k| changed.partition_point(|n| *n <= k))
                    .unwrap_or(0);
            let slice = &changed[start..];
            more = slice.len() > size;
            let filter = st.f;
            let keep = |n: u64| {
                filter.is_none_or(|(gt, t)| {
                    mb.received_at(n).is_some_and(|r| {
                        if gt {
                            r.unix_timestamp() > t
                        } else {
                            r.unix_timestamp() >= t
                        }
                    })
                })
            };
            for &n in slice.iter().take(size) {
                if mb.is_in(kind, n, container) && !keep(n) {
                    // Outside the filter: not part of this delta's view.
                    st.k = Some(n);
                    continue;
                }
                if mb.is_in(kind, n, container) {
                    if let Some(v) = mb.item_json(kind, n, immutable) {
                        items.push(&select(v, st.sel.as_ref()));
                    }
                } else {
                    // Deleted, or moved to another folder: gone from *this* folder's view.
                    items.push(&removed(generate::item_id(
                        mb.ctx.hash,
                        kind,
                        n,
                        None,
                        container,
                        immutable,
                    )));
                }
                st.k = Some(n);
            }
        }
    }
    drop(mb);
    let path = format!("{}/v1.0{}", shared.base_url, req.path);
    // Assembled as text: the items are already serialized JSON.
    let mut text = String::with_capacity(items.buf.len() + 512);
    text.push_str("{\"@odata.context\":");
    text.push_str(
        &json!(format!(
            "{}/v1.0/$metadata#Collection({})",
            shared.base_url,
            res.entity()
        ))
        .to_string(),
    );
    if more {
        text.push_str(",\"@odata.nextLink\":");
        text.push_str(&json!(format!("{path}?$skiptoken={}", encode_token(&st))).to_string());
    } else {
        let next = DeltaState {
            p: 1,
            s: st.u,
            k: None,
            ..st.clone()
        };
        text.push_str(",\"@odata.deltaLink\":");
        text.push_str(&json!(format!("{path}?$deltatoken={}", encode_token(&next))).to_string());
    }
    text.push_str(",\"value\":[");
    text.push_str(&String::from_utf8_lossy(&items.buf));
    text.push_str("]}");
    let mut r = GResp {
        status: 200,
        headers: Vec::new(),
        body: Some(text),
    };
    if page_pref.is_some() {
        r = r.header("Preference-Applied", format!("odata.maxpagesize={size}"));
    }
    r
}

/// A JSON array body under construction.
#[derive(Default)]
pub(super) struct Items {
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

