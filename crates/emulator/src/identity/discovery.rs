use super::*;

// ------------------------------------------------------------------ discovery

pub(super) async fn discovery(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let issuer_tid = match path_tenant(&shared, &tenant) {
        Some(PathTenant::Tenant(i)) => shared.tenant(i).map(|t| t.id).unwrap_or_default(),
        Some(PathTenant::Consumers) => "9188040d-6c67-4c5b-b112-36a304b66dad".to_string(),
        // Multi-tenant documents carry the literal template (OBS, §1.6).
        Some(_) => "{tenantid}".to_string(),
        None => {
            return aad_json(&shared, &Aad::new("invalid_tenant", 90002, tenant_not_found(&tenant)), &guid());
        }
    };
    let b = &shared.base_url;
    let doc = json!({
        "token_endpoint": format!("{b}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{issuer_tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{b}/{tenant}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    json_response(StatusCode::OK, doc.to_string(), &[])
}

pub(super) async fn jwks(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let issuer = match path_tenant(&shared, &tenant) {
        Some(PathTenant::Tenant(i)) => format!("{}/{}/v2.0", shared.base_url, shared.tenant(i).map(|t| t.id).unwrap_or_default()),
        _ => format!("{}/{{tenantid}}/v2.0", shared.base_url),
    };
    json_response(StatusCode::OK, shared.keys.jwks(&issuer).to_string(), &[])
}

/// MSAL's instance discovery (`/common/discovery/instance`), answered for our own host.
pub(super) async fn instance_discovery(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let params = parse_qs(q.as_deref().unwrap_or(""));
    let host = shared.base_url.split("://").nth(1).unwrap_or("").to_string();
    let tenant = params
        .get("authorization_endpoint")
        .and_then(|a| a.split("://").nth(1))
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or("common")
        .to_string();
    let doc = json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", shared.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    });
    json_response(StatusCode::OK, doc.to_string(), &[])
}
