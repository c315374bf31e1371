//! Contacts: contact folders, listing (with the extended-property `$filter`), creating and updating
//! contacts (contacts delta is in `delta`).

use super::mailbox::{Call, collection, container, stored};
use super::props;
use super::*;

/// The folder a contact folder sits in: the default Contacts folder holds the others; it sits in the
/// mailbox's contact root.
fn parent_of(key: &str) -> &'static str {
    if key == "contacts" { "contactroot" } else { "contacts" }
}

fn folder_json(hash: u64, key: &str) -> Value {
    let name = CONTACT_FOLDERS.iter().find(|(k, _)| *k == key).map(|(_, n)| *n).unwrap_or(key);
    json!({"id": generate::folder_id(hash, key), "displayName": name, "parentFolderId": generate::folder_id(hash, parent_of(key))})
}

/// The contact folders inside `parent`.
fn folders_in(call: &Call, parent: &str, entity: &str) -> GResp {
    let hash = lock(&call.mailbox()).ctx.hash;
    let v: Vec<Value> =
        CONTACT_FOLDERS.iter().filter(|(k, _)| *k != parent && parent_of(k) == parent).map(|(k, _)| folder_json(hash, k)).collect();
    GResp::json(200, &collection(call.shared, entity, v))
}

/// `GET /me/contactFolders`: the folders inside the default Contacts folder, not that folder itself,
/// which is addressed by its well-known name `contacts` (see [`folder`]).
pub(super) fn folders(call: &Call) -> GResp {
    folders_in(call, "contacts", "users('{id}')/contactFolders")
}

/// `GET /me/contactFolders/{id}/childFolders`.
pub(super) fn child_folders(call: &Call, id: &str) -> GResp {
    let key = container(&lock(&call.mailbox()), Kind::Contact, id);
    match key {
        Some(key) => folders_in(call, &key, "users('{id}')/contactFolders('{id}')/childFolders"),
        None => call.not_found(),
    }
}

/// `GET /me/contactFolders/{id}`, also by the well-known name `contacts` (the default folder).
pub(super) fn folder(call: &Call, id: &str) -> GResp {
    let arc = call.mailbox();
    let mb = lock(&arc);
    match container(&mb, Kind::Contact, id) {
        Some(key) => GResp::json(200, &folder_json(mb.ctx.hash, &key)),
        None => call.not_found(),
    }
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
    let all = |mb: &crate::store::MailboxState| mb.page(Kind::Contact, "contacts", None, usize::MAX);
    call.filtered_listing(Kind::Contact, "users('{id}')/contacts", all, |v| v)
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
    let Some((n, current)) = stored(&mb, Kind::Contact, id) else {
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
