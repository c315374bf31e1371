//! Navigation properties a client stamps on items and Graph returns only on `$expand`:
//! `singleValueExtendedProperties` (custom MAPI properties on messages, events and contacts) and To Do
//! `linkedResources`; and the `$filter` forms used to find items by them:
//! `singleValueExtendedProperties/Any(ep: ep/id eq '{id}' and ep/value eq '{value}')` (Microsoft Learn,
//! "Get singleValueLegacyExtendedProperty") and a plain `{property} eq '{value}'`.

use super::*;

const EXT: &str = "singleValueExtendedProperties";

/// A property id compared as Exchange does: case-insensitively, whitespace runs collapsed.
fn same_id(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The `singleValueExtendedProperties` of a create or update body, checked: each `{id, value}` with
/// string values (`None` when the body has none).
pub(super) fn extended(body: &Map<String, Value>) -> Result<Option<Vec<Value>>, String> {
    let Some(list) = body.get(EXT) else {
        return Ok(None);
    };
    let Some(items) = list.as_array() else {
        return Err(format!("Invalid value for property '{EXT}'."));
    };
    let mut out = Vec::new();
    for p in items {
        let (Some(id), Some(value)) = (p.get("id").and_then(Value::as_str), p.get("value").and_then(Value::as_str)) else {
            return Err("The extended property must have an 'id' and a string 'value'.".into());
        };
        if id.split_whitespace().count() < 2 {
            return Err(format!("The extended property id '{id}' is not valid."));
        }
        out.push(json!({"id": id, "value": value}));
    }
    Ok(Some(out))
}

/// `existing` with `update`'s properties replacing those of the same id.
pub(super) fn merged(existing: Option<&Value>, update: Vec<Value>) -> Value {
    let mut out: Vec<Value> = existing.and_then(Value::as_array).cloned().unwrap_or_default();
    for p in update {
        let id = p["id"].as_str().unwrap_or("");
        out.retain(|q| !same_id(q["id"].as_str().unwrap_or(""), id));
        out.push(p);
    }
    Value::Array(out)
}

/// To Do `linkedResources` of a create body, each given an id as Graph does.
pub(super) fn linked_resources(body: &Map<String, Value>) -> Option<Value> {
    let list = body.get("linkedResources")?.as_array()?;
    let out: Vec<Value> = list
        .iter()
        .filter_map(Value::as_object)
        .map(|r| {
            let mut r = r.clone();
            r.insert("id".into(), json!(guid()));
            for k in ["applicationName", "displayName", "externalId", "webUrl"] {
                r.entry(k).or_insert(Value::Null);
            }
            Value::Object(r)
        })
        .collect();
    Some(Value::Array(out))
}

/// A `$filter` on a plain item collection.
#[derive(Debug, PartialEq)]
pub(super) enum ItemFilter {
    /// An extended property with this id (and value, when given).
    Extended { id: String, value: Option<String> },
    /// A top-level string property equal to a value (e.g. `internetMessageId`).
    Equals { property: String, value: String },
}

impl ItemFilter {
    pub(super) fn parse(f: &str) -> Option<ItemFilter> {
        let f = f.trim();
        let prefix = "singlevalueextendedproperties/any(";
        if f.len() > prefix.len() && f[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return any_lambda(f[prefix.len()..].strip_suffix(')')?);
        }
        let (property, rest) = f.split_once(char::is_whitespace)?;
        let (value, tail) = quoted(keyword(rest.trim_start(), "eq")?.trim_start())?;
        (tail.trim().is_empty() && property.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| ItemFilter::Equals { property: property.to_string(), value })
    }

    /// Only items changed after generation can carry extended properties (see `MailboxState::find`).
    pub(super) fn only_added_items(&self) -> bool {
        matches!(self, ItemFilter::Extended { .. })
    }

    /// Does the item (with its `$expand`-only properties) match?
    pub(super) fn matches(&self, full: &Value) -> bool {
        match self {
            ItemFilter::Extended { id, value } => full.get(EXT).and_then(Value::as_array).is_some_and(|props| {
                props.iter().any(|p| {
                    same_id(p["id"].as_str().unwrap_or(""), id) && value.as_ref().is_none_or(|v| p["value"].as_str() == Some(v.as_str()))
                })
            }),
            ItemFilter::Equals { property, value } => full.get(property.as_str()).and_then(Value::as_str) == Some(value.as_str()),
        }
    }
}

/// `ep: ep/id eq '…' and ep/value eq '…'` (the inside of `Any(…)`).
fn any_lambda(inner: &str) -> Option<ItemFilter> {
    let (var, expr) = inner.split_once(':')?;
    let var = var.trim();
    let mut rest = expr.trim_start();
    let (mut id, mut value) = (None, None);
    loop {
        let (name, after) = rest.split_once(char::is_whitespace)?;
        let prop = name.strip_prefix(var)?.strip_prefix('/')?;
        let (lit, after) = quoted(keyword(after.trim_start(), "eq")?.trim_start())?;
        match prop.to_ascii_lowercase().as_str() {
            "id" => id = Some(lit),
            "value" => value = Some(lit),
            _ => return None,
        }
        let after = after.trim_start();
        if after.is_empty() {
            break;
        }
        rest = keyword(after, "and")?.trim_start();
    }
    Some(ItemFilter::Extended { id: id?, value })
}

/// `s` after the keyword `kw` (case-insensitive) and the whitespace that must follow it.
fn keyword<'a>(s: &'a str, kw: &str) -> Option<&'a str> {
    let head = s.get(..kw.len())?;
    let rest = &s[kw.len()..];
    (head.eq_ignore_ascii_case(kw) && rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// An OData string literal at the start of `s` (`''` is a quote): (its value, what follows).
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            out.push(c);
        } else if chars.peek().is_some_and(|(_, n)| *n == '\'') {
            out.push('\'');
            chars.next();
        } else {
            return Some((out, &body[i + 1..]));
        }
    }
    None
}

/// The item as this request shows it: navigation properties named in `$expand` kept (extended
/// properties narrowed by `($filter=id eq '…')`), the others dropped.
pub(super) fn shown(mut full: Value, expand: Option<&str>) -> Value {
    let wanted: Vec<(String, Option<String>)> = expand.map(expansions).unwrap_or_default();
    let Value::Object(m) = &mut full else {
        return full;
    };
    for key in crate::store::HIDDEN {
        let Some((_, options)) = wanted.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)) else {
            m.remove(*key);
            continue;
        };
        let only = options.as_deref().and_then(|o| o.trim().strip_prefix("$filter=")).and_then(|f| {
            let rest = f.trim_start().strip_prefix("id")?;
            quoted(keyword(rest.trim_start(), "eq")?.trim_start()).map(|(v, _)| v)
        });
        let list = m.get(*key).and_then(Value::as_array).cloned().unwrap_or_default();
        let kept: Vec<Value> =
            list.into_iter().filter(|p| only.as_ref().is_none_or(|id| same_id(p["id"].as_str().unwrap_or(""), id))).collect();
        if kept.is_empty() && *key == EXT {
            m.remove(*key); // Graph leaves out an expanded extended property the item does not have
        } else {
            m.insert((*key).to_string(), Value::Array(kept));
        }
    }
    full
}

/// `a($filter=…),b` → [(a, Some("$filter=…")), (b, None)], splitting only at top-level commas.
fn expansions(expand: &str) -> Vec<(String, Option<String>)> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, false, 0);
    for (i, c) in expand.char_indices() {
        match c {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            ',' if !quote && depth == 0 => {
                parts.push(&expand[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&expand[start..]);
    parts
        .into_iter()
        .map(|p| {
            let p = p.trim();
            match p.split_once('(') {
                Some((name, opts)) => (name.trim().to_string(), Some(opts.strip_suffix(')').unwrap_or(opts).to_string())),
                None => (p.to_string(), None),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name i360WriteKey";

    #[test]
    fn any_filter_parses_microsofts_documented_form() {
        let f = ItemFilter::parse(&format!("singleValueExtendedProperties/Any(ep: ep/id eq '{ID}' and ep/value eq 'k''1')")).unwrap();
        assert_eq!(f, ItemFilter::Extended { id: ID.into(), value: Some("k'1".into()) });
        let item = json!({EXT: [{"id": ID.to_ascii_lowercase(), "value": "k'1"}]});
        assert!(f.matches(&item), "property id matched case-insensitively");
        assert!(!f.matches(&json!({EXT: [{"id": ID, "value": "k2"}]})));
        assert!(!f.matches(&json!({"subject": "x"})));
        let only_id = ItemFilter::parse(&format!("singlevalueextendedproperties/any(x:x/id eq '{ID}')")).unwrap();
        assert!(only_id.matches(&item));
        assert!(ItemFilter::parse("singleValueExtendedProperties/Any(ep: ep/name eq 'x')").is_none());
        assert!(ItemFilter::parse("isDraft eq false or x").is_none());
        let eq = ItemFilter::parse("internetMessageId eq '<a@b>'").unwrap();
        assert!(eq.matches(&json!({"internetMessageId": "<a@b>"})));
    }

    #[test]
    fn expand_keeps_only_what_was_asked() {
        let full = json!({"id": "1", EXT: [{"id": ID, "value": "v"}, {"id": "String {00000000-0000-0000-0000-000000000000} Name Other", "value": "w"}], "linkedResources": [{"id": "r"}]});
        let plain = shown(full.clone(), None);
        assert!(plain.get(EXT).is_none() && plain.get("linkedResources").is_none());
        let one = shown(full.clone(), Some(&format!("singleValueExtendedProperties($filter=id eq '{ID}')")));
        assert_eq!(one[EXT].as_array().unwrap().len(), 1);
        assert!(one.get("linkedResources").is_none());
        let both = shown(full, Some("linkedResources,singleValueExtendedProperties"));
        assert_eq!(both[EXT].as_array().unwrap().len(), 2);
        assert_eq!(both["linkedResources"].as_array().unwrap().len(), 1);
    }
}
