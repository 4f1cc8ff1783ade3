//! One request as a handler sees it: path parameters from the route
//! pattern, query parameters, headers, the verified caller, paging and the
//! JSON body.
//!
//! The context notes which query parameters and body fields the handler
//! asked for, so the router can check them against the route's
//! declaration (see [`crate::route`]).

use std::cell::RefCell;

use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::form::{FieldUse, Form};
use crate::percent;
use crate::text;
use crate::wit::types::{FieldError, Identity, Request, Role};

/// The request a handler is called with, plus what routing extracted.
#[derive(Debug, Clone)]
pub struct Context {
    request: Request,
    /// Decoded path parameters, named as in the route pattern.
    params: Vec<(String, String)>,
    /// Decoded query parameters in the order given, without those refused.
    query: Vec<(String, String)>,
    /// Query parameters refused because no database can store their text,
    /// reported by the router together with the handler's own findings.
    unstorable: Vec<FieldError>,
    /// The query parameters the handler asked for, by name.
    queries_read: RefCell<Vec<String>>,
    /// The body fields the handler asked for.
    fields_read: RefCell<Vec<FieldUse>>,
}

/// `?limit=` and `?offset=` of a list request, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items to return: 1..=200, default 50.
    pub limit: i64,
    /// How many items to skip: 0 or more, default 0.
    pub offset: i64,
}

impl PageRequest {
    /// `limit` when the client gives none.
    pub const DEFAULT_LIMIT: i64 = 50;
    /// The largest `limit` a client may ask for.
    pub const MAX_LIMIT: i64 = 200;
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl Context {
    /// Wraps `request` with the path parameters routing extracted. Fails with
    /// `bad-request` when the query string is not valid percent-encoded UTF-8.
    ///
    /// A query parameter whose name or value no database can store (NUL, see
    /// [`crate::text`]) is left out, so no handler ever sees it, and listed
    /// in [`Context::unstorable`]: the router then answers `invalid-input`
    /// naming it and every bad field the handler found as well.
    pub fn new(request: Request, params: Vec<(String, String)>) -> Result<Context> {
        let mut query = parse_query(&request.query)?;
        let mut unstorable: Vec<FieldError> = Vec::new();
        query.retain(|(name, value)| {
            let storable = text::is_storable(name) && text::is_storable(value);
            if !storable && !unstorable.iter().any(|error| &error.field == name) {
                unstorable.push(FieldError::new(name.clone(), text::NUL_MESSAGE));
            }
            storable
        });
        Ok(Context {
            request,
            params,
            query,
            unstorable,
            queries_read: RefCell::default(),
            fields_read: RefCell::default(),
        })
    }

    /// The query parameters left out because no database can store their
    /// text; the request fails with these named whatever the handler does.
    pub fn unstorable(&self) -> &[FieldError] {
        &self.unstorable
    }

    /// The request as the host sent it.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The upper-case HTTP method.
    pub fn method(&self) -> &str {
        &self.request.method
    }

    /// The percent-encoded path.
    pub fn path(&self) -> &str {
        &self.request.path
    }

    /// The id the host gave this request (worth putting in log lines).
    pub fn request_id(&self) -> &str {
        &self.request.request_id
    }

    /// The decoded path parameter `name` of the route pattern
    /// (`{username}` → `param("username")`). Asking for a name the pattern
    /// does not have is a bug, reported as an internal error.
    pub fn param(&self, name: &str) -> Result<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                crate::log::error!(
                    "handler asked for path parameter `{name}`, which its route lacks"
                );
                Error::internal("internal error")
            })
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.note_query(name);
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of query parameter `name`, in order.
    pub fn query_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.note_query(name);
        self.query
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn note_query(&self, name: &str) {
        let mut read = self.queries_read.borrow_mut();
        if !read.iter().any(|known| known == name) {
            read.push(name.to_owned());
        }
    }

    /// The query parameters the handler asked for, in first-asked order.
    pub fn queries_read(&self) -> Vec<String> {
        self.queries_read.borrow().clone()
    }

    /// The body fields the handler asked for, in order.
    pub fn fields_read(&self) -> Vec<FieldUse> {
        self.fields_read.borrow().clone()
    }

    /// The value of header `name` (matched ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The raw body bytes.
    pub fn body(&self) -> &[u8] {
        &self.request.body
    }

    /// The verified caller, if the request carried a valid token.
    pub fn caller(&self) -> Option<&Identity> {
        self.request.caller.as_ref()
    }

    /// The caller, or 401 `unauthorized`.
    pub fn require_caller(&self) -> Result<&Identity> {
        self.caller()
            .ok_or_else(|| Error::unauthorized("authentication required: send a bearer token"))
    }

    /// An admin caller: 401 without a caller, 403 for a customer.
    pub fn require_admin(&self) -> Result<&Identity> {
        let caller = self.require_caller()?;
        if caller.is_admin() {
            Ok(caller)
        } else {
            Err(Error::forbidden("only an admin may do this"))
        }
    }

    /// The customer named `username` (compared ignoring case) or an admin:
    /// 401 without a caller, 403 for any other customer.
    pub fn require_self_or_admin(&self, username: &str) -> Result<&Identity> {
        let caller = self.require_caller()?;
        if caller.is_admin() || caller.is(username) {
            Ok(caller)
        } else {
            Err(Error::forbidden(
                "you may only do this for your own account",
            ))
        }
    }

    /// `?limit=` (1..=200, default 50) and `?offset=` (0 or more, default
    /// 0). A bad value is `invalid-input` naming the parameter; both are
    /// checked before either is reported.
    pub fn page(&self) -> Result<PageRequest> {
        let mut errors = Vec::new();
        let mut page = PageRequest::default();
        if let Some(text) = self.query("limit") {
            match text.parse::<i64>() {
                Ok(limit) if (1..=PageRequest::MAX_LIMIT).contains(&limit) => page.limit = limit,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {}", PageRequest::MAX_LIMIT),
                )),
            }
        }
        if let Some(text) = self.query("offset") {
            match text.parse::<i64>() {
                Ok(offset) if offset >= 0 => page.offset = offset,
                _ => errors.push(FieldError::new("offset", "must be an integer of 0 or more")),
            }
        }
        if errors.is_empty() {
            Ok(page)
        } else {
            Err(Error::invalid_fields(errors))
        }
    }

    /// The body as a JSON object to read field by field (see [`Form`]).
    /// Requires `Content-Type: application/json` (a `charset` parameter must
    /// be UTF-8); otherwise, or when the body is not a JSON object, the
    /// error is `bad-request`.
    pub fn form(&self) -> Result<Form<'_>> {
        match self.header("content-type") {
            Some(value) if is_json(value) => {
                Ok(Form::from_body(self.body())?.noting(&self.fields_read))
            }
            _ => Err(Error::bad_request(
                "the request body must be JSON, sent with Content-Type: application/json",
            )),
        }
    }
}

/// Whether a `Content-Type` value is JSON in UTF-8.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

fn parse_query(query: &str) -> Result<Vec<(String, String)>> {
    let malformed = || Error::bad_request("the query string is not valid percent-encoded UTF-8");
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((
                percent::decode(name, true).ok_or_else(malformed)?,
                percent::decode(value, true).ok_or_else(malformed)?,
            ))
        })
        .collect()
}

impl Identity {
    /// Whether this caller has the admin role.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this caller is the customer named `username`, ignoring case
    /// (usernames are unique ignoring case).
    pub fn is(&self, username: &str) -> bool {
        self.username.to_lowercase() == username.to_lowercase()
    }
}

impl Role {
    /// The role's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    /// The role with this name, ignoring case.
    pub fn from_name(name: &str) -> Option<Role> {
        if name.eq_ignore_ascii_case("customer") {
            Some(Role::Customer)
        } else if name.eq_ignore_ascii_case("admin") {
            Some(Role::Admin)
        } else {
            None
        }
    }
}

/// Serializes as the role's name, e.g. `"admin"`.
impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    pub(crate) fn request(query: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/api/v1/things".into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            caller: None,
            request_id: "req-1".into(),
        }
    }

    fn context(query: &str) -> Context {
        Context::new(request(query, &[], ""), vec![]).unwrap()
    }

    fn with_caller(username: &str, role: Role) -> Context {
        let mut req = request("", &[], "");
        req.caller = Some(Identity {
            customer_id: "id-1".into(),
            username: username.into(),
            role,
        });
        Context::new(req, vec![("username".into(), "Alice".into())]).unwrap()
    }

    fn invalid_fields(error: Error) -> Vec<String> {
        match error {
            Error::InvalidInput(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn paging_defaults_to_fifty_from_the_start() {
        assert_eq!(
            context("").page().unwrap(),
            PageRequest {
                limit: 50,
                offset: 0
            }
        );
    }

    #[test]
    fn paging_accepts_the_limits_of_its_ranges() {
        assert_eq!(
            context("limit=1&offset=0").page().unwrap(),
            PageRequest {
                limit: 1,
                offset: 0
            }
        );
        assert_eq!(
            context("limit=200&offset=1000000").page().unwrap(),
            PageRequest {
                limit: 200,
                offset: 1_000_000
            }
        );
    }

    #[test]
    fn bad_paging_values_name_each_parameter() {
        for (query, bad) in [
            ("limit=0", vec!["limit"]),
            ("limit=201", vec!["limit"]),
            ("limit=abc", vec!["limit"]),
            ("limit=", vec!["limit"]),
            ("limit=5.5", vec!["limit"]),
            ("offset=-1", vec!["offset"]),
            ("offset=x", vec!["offset"]),
            ("offset=99999999999999999999", vec!["offset"]),
            ("limit=-3&offset=-1", vec!["limit", "offset"]),
        ] {
            let error = context(query).page().unwrap_err();
            assert_eq!(invalid_fields(error), bad, "{query}");
        }
    }

    #[test]
    fn query_parameters_are_decoded() {
        let ctx = context("q=Ada+Lovelace&tag=a%26b&tag=c&flag&=x");
        assert_eq!(ctx.query("q"), Some("Ada Lovelace"));
        assert_eq!(ctx.query_all("tag").collect::<Vec<_>>(), vec!["a&b", "c"]);
        assert_eq!(ctx.query("flag"), Some(""));
        assert_eq!(ctx.query("missing"), None);
    }

    #[test]
    fn malformed_query_strings_are_bad_requests() {
        let error = Context::new(request("q=%zz", &[], ""), vec![]).unwrap_err();
        assert!(matches!(error, Error::BadRequest(_)));
    }

    #[test]
    fn query_parameters_no_database_can_store_are_named_and_hidden() {
        let ctx = Context::new(request("q=a%00&limit=5&tag=%00&tag=x", &[], ""), vec![]).unwrap();
        let named: Vec<&str> = ctx.unstorable().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, vec!["q", "tag"]);
        assert_eq!(ctx.query("q"), None);
        assert_eq!(ctx.query_all("tag").collect::<Vec<_>>(), vec!["x"]);
        assert_eq!(ctx.query("limit"), Some("5"));
    }

    #[test]
    fn headers_are_matched_ignoring_case() {
        let ctx = Context::new(request("", &[("x-thing", "1")], ""), vec![]).unwrap();
        assert_eq!(ctx.header("X-Thing"), Some("1"));
        assert_eq!(ctx.header("x-other"), None);
    }

    #[test]
    fn path_parameters_are_looked_up_by_name() {
        let ctx = with_caller("alice", Role::Customer);
        assert_eq!(ctx.param("username").unwrap(), "Alice");
        assert!(matches!(ctx.param("id"), Err(Error::Internal(_))));
    }

    #[test]
    fn anonymous_callers_are_unauthorized() {
        let ctx = context("");
        assert!(ctx.caller().is_none());
        assert!(matches!(ctx.require_caller(), Err(Error::Unauthorized(_))));
        assert!(matches!(ctx.require_admin(), Err(Error::Unauthorized(_))));
        assert!(matches!(
            ctx.require_self_or_admin("alice"),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn customers_may_act_only_on_themselves_ignoring_case() {
        let ctx = with_caller("alice", Role::Customer);
        assert!(ctx.require_caller().is_ok());
        assert!(ctx.require_self_or_admin("ALICE").is_ok());
        assert!(matches!(
            ctx.require_self_or_admin("bob"),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(ctx.require_admin(), Err(Error::Forbidden(_))));
    }

    #[test]
    fn admins_may_act_on_anyone() {
        let ctx = with_caller("root", Role::Admin);
        assert!(ctx.require_admin().is_ok());
        assert!(ctx.require_self_or_admin("bob").is_ok());
    }

    #[test]
    fn json_bodies_need_a_json_content_type() {
        for (content_type, ok) in [
            ("application/json", true),
            ("Application/JSON", true),
            ("application/json; charset=utf-8", true),
            ("application/json;charset=\"UTF-8\"", true),
            ("application/json; charset=latin1", false),
            ("text/plain", false),
            ("application/jsonp", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            let ctx =
                Context::new(request("", &[("content-type", content_type)], "{}"), vec![]).unwrap();
            assert_eq!(ctx.form().is_ok(), ok, "{content_type}");
        }
        let ctx = Context::new(request("", &[], "{}"), vec![]).unwrap();
        assert!(matches!(ctx.form(), Err(Error::BadRequest(_))));
    }

    #[test]
    fn roles_have_api_names() {
        assert_eq!(Role::Admin.as_str(), "admin");
        assert_eq!(Role::from_name("CUSTOMER"), Some(Role::Customer));
        assert_eq!(Role::from_name("root"), None);
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
    }
}
