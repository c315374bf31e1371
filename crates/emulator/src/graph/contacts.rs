//! Contacts: contact folders, listing (with the extended-property `$filter`), creating and updating
//! contacts (contacts delta is in `delta`).

use super::mailbox::{Call, collection, container};
use super::props;
use super::*;

pub(super) fn folders(call: &Call) -> GResp {
    let hash = lock(&call.mailbox()).ctx.hash;
    let v: Vec<Value> = CONTACT_FOLDERS
        .iter()
        .map(|(k, name)| json!({"id": generate::folder_id(hash, k), "displayName": name, "parentFolderId": generate::folder_id(hash, "contactroot")}))
        .collect();
    GResp::json(200, &collection(call.shared, "users('{id}')/contactFolders", v))
}

pub(super) fn create_contact(call: &Call, folder: &str) -> GResp {
    let mut fields = match call.body_object() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(key) = container(&lock(&call.mailbox()), Kind::Contact, folder) else {
        return call.not_found();
    };
    match props::extended(&fields) {
        Ok(Some(ext)) => {
            fields.insert("singleValueExtendedProperties".into(), Value::Array(ext));
        }
        Ok(None) => {}
        Err(e) => return err(call.ctx, 400, "ErrorInvalidExtendedPropertyValue", &e),
    }
    fields.retain(|k, _| {
        !k.starts_with('@') && !matches!(k.as_str(), "id" | "parentFolderId" | "changeKey" | "createdDateTime" | "lastModifiedDateTime")
    });
    if !fields.contains_key("displayName") {
        let part = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let name = format!("{} {}", part("givenName"), part("surname")).trim().to_string();
        fields.insert("displayName".into(), json!(name));
    }
    let v = call.created(Kind::Contact, &key, fields);
    call.applied(GResp::json(201, &v))
}

/// `GET /me/contacts`: the default folder's contacts, `$filter` (extended property or string property),
/// `$top`/`$skip`, `$select`, `$expand`.
pub(super) fn list(call: &Call) -> GResp {
    let filter = match call.item_filter() {
        Ok(f) => f,
        Err(r) => return r,
    };
    let arc = call.mailbox();
    let mb = lock(&arc);
    let all = mb.page(Kind::Contact, "contacts", None, usize::MAX);
    let ns = call.matching(&mb, Kind::Contact, filter.as_ref(), all);
    call.listing(&mb, Kind::Contact, &ns, "users('{id}')/contacts", |v| v)
}

/// `PATCH /me/contacts/{id}` → 200 the merged contact (extended properties merged by id).
pub(super) fn update_contact(call: &Call, id: &str) -> GResp {
    let mut patch = match call.body_object() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ext = match props::extended(&patch) {
        Ok(e) => e,
        Err(e) => return err(call.ctx, 400, "ErrorInvalidExtendedPropertyValue", &e),
    };
    patch.retain(|k, _| {
        !k.starts_with('@') && !matches!(k.as_str(), "id" | "parentFolderId" | "changeKey" | "createdDateTime" | "lastModifiedDateTime")
    });
    let arc = call.mailbox();
    let mut mb = lock(&arc);
    let Some((Kind::Contact, n)) = mb.resolve(id) else {
        return call.not_found();
    };
    let Some(current) = mb.item_full(Kind::Contact, n, false) else {
        return call.not_found();
    };
    if let Some(ext) = ext {
        patch.insert("singleValueExtendedProperties".into(), props::merged(current.get("singleValueExtendedProperties"), ext));
    }
    let names_changed = patch.contains_key("givenName") || patch.contains_key("surname");
    if names_changed && !patch.contains_key("displayName") {
        let part = |k: &str| patch.get(k).or_else(|| current.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
        let name = format!("{} {}", part("givenName"), part("surname")).trim().to_string();
        patch.insert("displayName".into(), json!(name));
    }
    mb.update(Kind::Contact, n, patch, call.shared.now());
    crate::subscriptions::flush(call.shared, &call.user.user, &mut mb);
    match mb.item_json(Kind::Contact, n, call.immutable) {
        Some(v) => call.applied(GResp::json(200, &v)),
        None => call.not_found(),
    }
}
