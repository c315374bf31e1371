use super::*;

// ------------------------------------------------------------------ users

pub(super) fn user_json(shared: &Shared, u: &UserRef, with_context: bool) -> Value {
    let mut v = json!({
        "businessPhones": [],
        "displayName": u.user.display_name,
        "givenName": u.user.given_name,
        "jobTitle": u.user.job_title,
        "mail": if u.user.licensed { Value::from(u.user.user_principal_name.clone()) } else { Value::Null },
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "surname": u.user.surname,
        "userPrincipalName": u.user.user_principal_name,
        "id": u.user.id,
    });
    if with_context {
        v["@odata.context"] = json!(format!("{}/v1.0/$metadata#users/$entity", shared.base_url));
    }
    v
}

pub(super) fn select(v: Value, sel: Option<&String>) -> Value {
    let Some(sel) = sel.filter(|s| !s.trim().is_empty()) else {
        return v;
    };
    let keep: HashSet<&str> = sel.split(',').map(str::trim).collect();
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(k, _)| k.starts_with('@') || k == "id" || keep.contains(k.as_str())).collect())
        }
        other => other,
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct UsersToken {
    o: usize,
    t: usize,
    f: Option<String>,
    s: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

/// `$search="displayName:ali" OR "mail:ali"` (directory search; needs `ConsistencyLevel: eventual`).
pub(super) fn user_search(q: &str) -> Result<Vec<(String, String)>, ()> {
    let mut out = Vec::new();
    for clause in q.split(" OR ").flat_map(|c| c.split(" or ")) {
        let c = clause.trim().trim_matches('"');
        let (prop, val) = c.split_once(':').ok_or(())?;
        out.push((prop.trim().to_string(), val.trim().to_ascii_lowercase()));
    }
    if out.is_empty()
        || out.iter().any(|(p, _)| !["mail", "userPrincipalName", "displayName", "givenName", "surname"].contains(&p.as_str()))
    {
        return Err(());
    }
    Ok(out)
}

/// `$filter` subset: `startswith(prop,'x')` and `prop eq 'x'` joined by `or`, on mail/UPN/displayName.
pub(super) fn user_filter(f: &str) -> Result<Vec<(String, bool, String)>, ()> {
    let mut out = Vec::new();
    for clause in f.split(" or ") {
        let c = clause.trim();
        if let Some(inner) = c.strip_prefix("startswith(").and_then(|r| r.strip_suffix(')')) {
            let (prop, val) = inner.split_once(',').ok_or(())?;
            let val = val.trim().trim_matches('\'').to_string();
            out.push((prop.trim().to_string(), true, val));
        } else if let Some((prop, val)) = c.split_once(" eq ") {
            out.push((prop.trim().to_string(), false, val.trim().trim_matches('\'').to_string()));
        } else {
            return Err(());
        }
    }
    if out.iter().any(|(p, _, _)| !["mail", "userPrincipalName", "displayName", "givenName", "surname"].contains(&p.as_str())) {
        return Err(());
    }
    Ok(out)
}

pub(super) fn users_list(shared: &Shared, ctx: &Ctx, req: &GReq, grant: &AccessGrant) -> GResp {
    let unsupported = |msg: &str| err(ctx, 400, "Request_UnsupportedQuery", msg);
    let tok = match users_query(req) {
        Ok(tok) => tok,
        Err(None) => return bad_request(ctx, "Invalid skiptoken."),
        Err(Some(msg)) => return unsupported(&msg),
    };
    let Ok(filter) = tok.f.as_deref().map(user_filter).transpose() else {
        return unsupported("Unsupported or invalid query filter clause specified for property or navigation property.");
    };
    let Ok(search) = tok.q.as_deref().map(user_search).transpose() else {
        return unsupported("Unsupported or invalid $search clause.");
    };
    let Some((ti, tenant)) = shared.tenant_index(&grant.tenant_id).and_then(|ti| shared.tenant(ti).map(|t| (ti, t))) else {
        return bad_request(ctx, "Unknown tenant.");
    };
    let matches = |u: &UserRef| {
        let v = user_json(shared, u, false);
        let text = |prop: &str| v.get(prop).and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        let filtered = filter.as_ref().is_none_or(|clauses| {
            clauses.iter().any(|(prop, prefix, val)| {
                let (field, val) = (text(prop), val.to_ascii_lowercase());
                if *prefix { field.starts_with(&val) } else { field == val }
            })
        });
        filtered && search.as_ref().is_none_or(|clauses| clauses.iter().any(|(prop, val)| text(prop).contains(val)))
    };
    let matching: Vec<UserRef> = tenant
        .users
        .iter()
        .map(|u| UserRef { tenant_id: tenant.id.clone(), tenant_index: ti, user: u.clone() })
        .filter(|u| matches(u))
        .collect();
    let page: Vec<Value> = matching.iter().skip(tok.o).take(tok.t).map(|u| select(user_json(shared, u, false), tok.s.as_ref())).collect();
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(format!("{}/v1.0/$metadata#users", shared.base_url)));
    if tok.o + tok.t < matching.len() {
        let next = UsersToken { o: tok.o + tok.t, ..tok };
        out.insert("@odata.nextLink".into(), json!(format!("{}/v1.0/users?$skiptoken={}", shared.base_url, encode_token(&next))));
    }
    out.insert("value".into(), Value::Array(page));
    GResp::json(200, &Value::Object(out))
}

/// The listing asked for: from a `$skiptoken`, or a first page's `$top`/`$filter`/`$select`/`$search`.
/// `Err(None)`: an unreadable skiptoken; `Err(Some(message))`: an unsupported query.
fn users_query(req: &GReq) -> Result<UsersToken, Option<String>> {
    let q = parse_qs(&req.query);
    if let Some(t) = q.get("$skiptoken") {
        return decode_token::<UsersToken>(t).ok_or(None);
    }
    let top = match q.get("$top").map(|t| (t, t.parse::<usize>())) {
        None => 100,
        Some((_, Ok(n))) if (1..=999).contains(&n) => n,
        Some((t, _)) => return Err(Some(format!("Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."))),
    };
    let eventual = req.headers.get("consistencylevel").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    if q.contains_key("$search") && !eventual {
        let msg =
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'";
        return Err(Some(msg.to_string()));
    }
    Ok(UsersToken { o: 0, t: top, f: q.get("$filter").cloned(), s: q.get("$select").cloned(), q: q.get("$search").cloned() })
}

pub(super) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    let resp = match check_access_token(&shared, token) {
        TokenCheck::Valid(g) => match g.user_id.and_then(|u| shared.user(&u)) {
            Some(u) => GResp::json(
                200,
                &json!({"sub": u.user.id, "name": u.user.display_name, "family_name": u.user.surname, "given_name": u.user.given_name, "email": u.user.user_principal_name}),
            ),
            None => GResp::empty(401),
        },
        _ => GResp::empty(401),
    };
    into_response(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_filter_parses_startswith_and_eq() {
        let f = user_filter("startswith(mail,'al') or userPrincipalName eq 'bob@x'").unwrap();
        assert_eq!(f.len(), 2);
        assert!(user_filter("contains(mail,'a')").is_err());
    }
}
