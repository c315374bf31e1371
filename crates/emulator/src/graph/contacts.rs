//! Contacts: contact folders and creating contacts (contacts delta is in `delta`).

use super::mailbox::{Call, collection, container};
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
    if !fields.contains_key("displayName") {
        let part = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let name = format!("{} {}", part("givenName"), part("surname")).trim().to_string();
        fields.insert("displayName".into(), json!(name));
    }
    let v = call.created(Kind::Contact, &key, fields);
    call.applied(GResp::json(201, &v))
}
