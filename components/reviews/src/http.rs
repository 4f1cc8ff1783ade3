//! The HTTP routes of the reviews service (API.md, "Reviews"): submit,
//! edit, delete, read, list, flag and moderate.
//!
//! Who sees what: an approved review is public; a pending or flagged one
//! only to its author and admins, and to anyone else it does not exist
//! (404), so reading, listing and flagging never reveal it. Changing a
//! review needs ownership (edit) or ownership or the admin role (delete):
//! anyone else gets 403. Ownership is the author's customer id, never the
//! username, which a new customer may register after the author left.
//!
//! Where API.md is silent (documented in the route declarations too):
//! - `comment` may be left out of a new review and means `""`.
//! - `?status=` on a good's reviews is for admins only: a customer gets 403
//!   and an anonymous caller 401; `average_rating` always counts approved
//!   reviews only, whatever the filter.
//! - The flag body may be empty or absent altogether.
//! - `GET /api/v1/reviews` is the admins' moderation queue: every review,
//!   newest first, optionally `?status=`.
//! - An edit re-checks `verified_purchase`, since the author may have
//!   bought the good since submitting.

use serde::Serialize;
use serde_json::json;
use souk_sdk::error::OnConstraint;
use souk_sdk::{
    Body, Caller, Context, Describe, Error, ErrorKind, Identity, Page, Response, Result, Route,
    Router, created, log, no_content, now_rfc3339, ok, page,
};

use crate::domain::{Comment, GoodId, Note, Rating, Status, Verdict, average_rating};
use crate::events;
use crate::services::{self, Good};
use crate::store::{self, Action, Edit, NewReview, Review, Visible};

/// Every route this component serves, with its documentation.
pub fn router() -> Router {
    Router::new("reviews")
        .describe_tag(
            "Reviews of goods: one per customer per good, moderated before they are public.",
        )
        .path_param("id", "The review's id.")
        .path_param("good_id", "The good's id.")
        .path_param("username", "The author's username (ignoring case).")
        .route(
            Route::post("/api/v1/reviews", submit)
                .operation("submitReview", "Review a good")
                .description(
                    "A customer or admin reviews a good, once per good. The review starts \
                     `pending` (hidden from others until an admin approves it); \
                     `verified_purchase` says whether the author has bought the good, and \
                     `good_name` is the good's name at this moment. `comment` may be left out \
                     (empty). HTML markup is removed from the comment before it is stored.",
                )
                .caller(Caller::Authenticated)
                .body(
                    Body::object("NewReview", "")
                        .required::<GoodId>("good_id")
                        .required::<Rating>("rating")
                        .optional::<Comment>("comment")
                        .default(json!("")),
                )
                .created::<Review>("The new review.")
                .header("Location", "`/api/v1/reviews/{id}`")
                .error(GOOD_NOT_FOUND)
                .error(ALREADY_REVIEWED),
        )
        .route(
            Route::get("/api/v1/reviews", list_all)
                .operation("listReviews", "Every review (admin moderation queue)")
                .description(
                    "For admins: every review of every good, newest first, or only those with \
                     `?status=` (e.g. `pending`, the moderation queue).",
                )
                .caller(Caller::Admin)
                .query::<Status>(
                    "status",
                    "Only reviews with this status; all statuses when absent.",
                )
                .page::<Review>("ReviewPage", "A page of reviews, newest first."),
        )
        .route(
            Route::get("/api/v1/reviews/{id}", show)
                .operation("getReview", "Read one review")
                .description(
                    "Anyone may read an approved review; a pending or flagged one only its \
                     author and admins. To anyone else it does not exist (404).",
                )
                .caller(Caller::Optional)
                .ok::<Review>("The review.")
                .error(HIDDEN_OR_NOT_FOUND),
        )
        .route(
            Route::patch("/api/v1/reviews/{id}", edit)
                .operation("editReview", "Edit one's review")
                .description(
                    "The author changes `rating`, `comment` or both; the review goes back to \
                     `pending` for moderation, and `verified_purchase` is checked again. \
                     `good_id`, `status` and `verified_purchase` cannot be set.",
                )
                .caller(Caller::Authenticated)
                .body(
                    Body::changes("ReviewChanges", "")
                        .optional::<Rating>("rating")
                        .optional::<Comment>("comment"),
                )
                .ok::<Review>("The review after the change.")
                .error(NOT_THE_AUTHOR)
                .error(NOT_FOUND),
        )
        .route(
            Route::delete("/api/v1/reviews/{id}", delete)
                .operation("deleteReview", "Delete a review")
                .description(
                    "The author or an admin deletes the review, with its moderation trail.",
                )
                .caller(Caller::Authenticated)
                .no_content("Deleted.")
                .error(NEITHER_AUTHOR_NOR_ADMIN)
                .error(NOT_FOUND),
        )
        .route(
            Route::get("/api/v1/reviews/good/{good_id}", list_for_good)
                .operation("listReviewsOfGood", "A good's reviews and average rating")
                .description(
                    "The good's approved reviews, newest first, and `average_rating`: the mean \
                     of its approved ratings rounded half up to 2 decimals, or `null` when none \
                     is approved. An admin may pass `?status=` to list the reviews with \
                     another status instead (the average still counts approved reviews only); \
                     `status` from anyone else is refused (401 anonymous, 403 customer) rather \
                     than ignored.",
                )
                .caller(Caller::Optional)
                .query::<Status>(
                    "status",
                    "Admins only: list reviews with this status instead of approved ones.",
                )
                .paged()
                .ok::<GoodReviews<'_>>("A page of reviews with the average approved rating.")
                .error(STATUS_WITHOUT_TOKEN)
                .error(STATUS_NOT_ADMIN)
                .error(GOOD_NOT_FOUND),
        )
        .route(
            Route::get("/api/v1/reviews/customer/{username}", list_for_customer)
                .operation("listReviewsOfCustomer", "A customer's reviews")
                .description(
                    "Reviews written under this username, newest first: approved ones for \
                     everyone; every status for the customer themselves and for admins. An \
                     unknown username gives an empty page.",
                )
                .caller(Caller::Optional)
                .page::<Review>("ReviewPage", "A page of reviews, newest first."),
        )
        .route(
            Route::post("/api/v1/reviews/{id}/flag", flag)
                .operation("flagReview", "Report a review")
                .description(
                    "Any signed-in user reports a review they can see; it becomes `flagged` \
                     (hidden from everyone but its author and admins) until an admin decides. \
                     The body, and `reason` in it, may be left out; the reason is kept for \
                     admins and never shown in the review.",
                )
                .caller(Caller::Authenticated)
                .body(
                    Body::object("FlagRequest", "")
                        .may_be_absent()
                        .optional::<Note>("reason"),
                )
                .ok::<Review>("The review, now flagged.")
                .error(HIDDEN_OR_NOT_FOUND),
        )
        .route(
            Route::post("/api/v1/reviews/{id}/moderate", moderate)
                .operation("moderateReview", "Approve or flag a review")
                .description(
                    "An admin sets the review's status to `approved` (public, counted in the \
                     average) or `flagged` (hidden). The optional `note` is kept for admins and \
                     never shown in the review.",
                )
                .caller(Caller::Admin)
                .body(
                    Body::object("ModerationRequest", "")
                        .required::<Verdict>("status")
                        .optional::<Note>("note"),
                )
                .ok::<Review>("The review after the decision.")
                .error(NOT_FOUND),
        )
}

const NOT_FOUND: ErrorKind = ErrorKind::not_found("No review has this id.");
const HIDDEN_OR_NOT_FOUND: ErrorKind = ErrorKind::not_found(
    "No review has this id, or it is pending or flagged and the caller is neither its author nor \
     an admin.",
);
const GOOD_NOT_FOUND: ErrorKind = ErrorKind::not_found("No good has this id.");
const NOT_THE_AUTHOR: ErrorKind =
    ErrorKind::forbidden("The caller is not the review's author, admins included.");
const NEITHER_AUTHOR_NOR_ADMIN: ErrorKind =
    ErrorKind::forbidden("The caller is neither the author nor an admin.");
const STATUS_WITHOUT_TOKEN: ErrorKind =
    ErrorKind::unauthorized("`status` was given without a valid bearer token.");
const STATUS_NOT_ADMIN: ErrorKind =
    ErrorKind::forbidden("`status` was given by a caller who is not an admin.");
/// The 409 for a second review of one good by one customer.
const ALREADY_REVIEWED: ErrorKind = ErrorKind::conflict(
    "already-reviewed",
    "The caller has already reviewed this good; edit that review instead.",
);

/// [`ALREADY_REVIEWED`] with the detail a client sees.
fn already_reviewed() -> Error {
    ALREADY_REVIEWED.error("you have already reviewed this good; edit that review instead")
}

/// `POST /api/v1/reviews`: a new `pending` review by the caller.
fn submit(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_caller()?;
    let mut form = ctx.form()?;
    form.reject("status", "cannot be set: every new review is pending");
    form.reject(
        "verified_purchase",
        "cannot be set: it is whether you have bought the good",
    );
    let good_id = form.required::<GoodId>("good_id");
    let rating = form.required::<Rating>("rating");
    let comment = form.optional::<Comment>("comment");
    let (good_id, rating, comment) = form.finish((good_id, rating, comment))?;
    let comment = comment.unwrap_or_default();

    let good = find_good(good_id.as_str())?;
    // Checked first only to skip asking sales; the unique index decides races.
    if store::exists_for(&good.id, &caller.customer_id)? {
        return Err(already_reviewed());
    }
    let verified_purchase = services::has_purchased(&caller.customer_id, &good.id)?;
    let id = souk_sdk::new_id();
    let review = store::insert(&NewReview {
        id: &id,
        good_id: &good.id,
        good_name: &good.name,
        customer_id: &caller.customer_id,
        username: &caller.username,
        rating,
        comment: &comment,
        verified_purchase,
        now: &now_rfc3339(),
    })
    .on_unique(already_reviewed)?;
    events::submitted(&review)?;
    log::info!(
        "customer {} reviewed good {} ({} stars)",
        caller.customer_id,
        review.good_id,
        review.rating
    );
    created(&review_path(&review.id), &review)
}

/// `GET /api/v1/reviews/{id}`: one review the caller may see.
fn show(ctx: &Context) -> Result<Response> {
    let review = visible_review(ctx)?;
    ok(&review)
}

/// `PATCH /api/v1/reviews/{id}`: the author changes the rating and/or the
/// comment; the review goes back to `pending`.
fn edit(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_caller()?;
    let review = find_review(ctx.param("id")?)?;
    if review.customer_id != caller.customer_id {
        return Err(NOT_THE_AUTHOR.error("only the author may edit a review"));
    }

    let mut form = ctx.form()?;
    if form.is_empty() {
        return Err(Error::bad_request(
            "the body must contain `rating`, `comment` or both",
        ));
    }
    form.reject(
        "good_id",
        "cannot be changed: review the other good instead",
    );
    form.reject("status", "cannot be set: an edited review is pending again");
    form.reject(
        "verified_purchase",
        "cannot be set: it is whether you have bought the good",
    );
    let rating = form.optional::<Rating>("rating");
    let comment = form.optional::<Comment>("comment");
    let (rating, comment) = form.finish((rating, comment))?;

    let verified_purchase =
        review.verified_purchase || services::has_purchased(&review.customer_id, &review.good_id)?;
    let edited = store::edit(
        &review.id,
        &Edit { rating, comment },
        verified_purchase,
        &now_rfc3339(),
    )?
    .ok_or_else(not_found)?;
    events::submitted(&edited)?;
    ok(&edited)
}

/// `DELETE /api/v1/reviews/{id}`: by its author or an admin.
fn delete(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_caller()?;
    let review = find_review(ctx.param("id")?)?;
    if review.customer_id != caller.customer_id && !caller.is_admin() {
        return Err(
            NEITHER_AUTHOR_NOR_ADMIN.error("only the author or an admin may delete a review")
        );
    }
    if !store::delete(&review.id)? {
        return Err(not_found());
    }
    log::info!("review {} deleted by {}", review.id, caller.customer_id);
    no_content()
}

/// A page of a good's reviews, plus the average approved rating.
#[derive(Debug, Serialize, Describe)]
#[describe(name = "GoodReviewPage")]
struct GoodReviews<'a> {
    /// The page.
    #[serde(flatten)]
    page: Page<&'a [Review]>,
    /// Mean of the good's approved ratings, rounded half up to 2 decimals;
    /// `null` when none is approved.
    average_rating: Option<f64>,
}

/// `GET /api/v1/reviews/good/{good_id}`: the good's approved reviews (or,
/// for an admin, those with `?status=`), newest first, and its average
/// approved rating.
fn list_for_good(ctx: &Context) -> Result<Response> {
    let (paging, status) = both(ctx.page(), status_filter(ctx))?;
    let good = find_good(ctx.param("good_id")?)?;
    let visible = Visible::Status(status.unwrap_or(Status::Approved));
    let (reviews, total) = store::list_for_good(&good.id, visible, paging)?;
    let (stars, ratings) = store::approved_rating_totals(&good.id)?;
    ok(&GoodReviews {
        page: Page::new(paging, &reviews, total),
        average_rating: average_rating(stars, ratings),
    })
}

/// `GET /api/v1/reviews/customer/{username}`: the reviews written under
/// this username, newest first: approved ones for everyone, every one for
/// the author and admins.
fn list_for_customer(ctx: &Context) -> Result<Response> {
    let username = ctx.param("username")?;
    let paging = ctx.page()?;
    let visible = match ctx.caller() {
        Some(caller) if caller.is_admin() => Visible::All,
        Some(caller) if caller.is(username) => Visible::ApprovedOrBy(&caller.customer_id),
        _ => Visible::Status(Status::Approved),
    };
    let (reviews, total) = store::list_for_username(username, visible, paging)?;
    page(paging, &reviews, total)
}

/// `GET /api/v1/reviews`: every review, for admins (the moderation queue),
/// optionally only those with `?status=`.
fn list_all(ctx: &Context) -> Result<Response> {
    ctx.require_admin()?;
    let (paging, status) = both(ctx.page(), status_filter(ctx))?;
    let visible = status.map_or(Visible::All, Visible::Status);
    let (reviews, total) = store::list_all(visible, paging)?;
    page(paging, &reviews, total)
}

/// `POST /api/v1/reviews/{id}/flag`: any signed-in user reports a review
/// they can see; it is hidden (`flagged`) until an admin decides.
fn flag(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_caller()?;
    let review = visible_review(ctx)?;
    let reason = if ctx.body().iter().all(u8::is_ascii_whitespace) {
        Note::default()
    } else {
        let mut form = ctx.form()?;
        let reason = form.optional::<Note>("reason");
        form.finish(reason)?.unwrap_or_default()
    };
    let flagged = store::set_status(
        &review.id,
        Status::Flagged,
        Action::Flag,
        &caller.customer_id,
        reason.as_str(),
        &now_rfc3339(),
    )?
    .ok_or_else(not_found)?;
    log::info!("review {} flagged by {}", review.id, caller.customer_id);
    ok(&flagged)
}

/// `POST /api/v1/reviews/{id}/moderate`: an admin approves or flags a review.
fn moderate(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_admin()?;
    let review = find_review(ctx.param("id")?)?;
    let mut form = ctx.form()?;
    let verdict = form.required::<Verdict>("status");
    let note = form.optional::<Note>("note");
    let (verdict, note) = form.finish((verdict, note))?;
    let note = note.unwrap_or_default();
    let moderated = store::set_status(
        &review.id,
        verdict.status(),
        Action::Moderate,
        &caller.customer_id,
        note.as_str(),
        &now_rfc3339(),
    )?
    .ok_or_else(not_found)?;
    events::moderated(&review, &moderated, note.as_str())?;
    log::info!(
        "review {} {} by admin {}",
        review.id,
        moderated.status,
        caller.customer_id
    );
    ok(&moderated)
}

/// `?status=` of a list: admins only (401/403 otherwise), one of the statuses.
fn status_filter(ctx: &Context) -> Result<Option<Status>> {
    let Some(text) = ctx.query("status") else {
        return Ok(None);
    };
    match ctx.caller() {
        Some(caller) if caller.is_admin() => Status::parse(text)
            .map(Some)
            .map_err(|message| Error::invalid("status", message)),
        Some(_) => Err(STATUS_NOT_ADMIN.error("only an admin may filter reviews by status")),
        None => Err(STATUS_WITHOUT_TOKEN
            .error("authentication required: only an admin may filter reviews by status")),
    }
}

/// Both results, or one error: a permission (or other) error first, else
/// every bad field of both.
fn both<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(Error::InvalidInput(mut first)), Err(Error::InvalidInput(second))) => {
            first.extend(second);
            Err(Error::invalid_fields(first))
        }
        (Err(Error::InvalidInput(_)), Err(other)) | (Err(other), _) | (_, Err(other)) => Err(other),
    }
}

/// Whether `caller` may see `review` at all.
fn can_see(caller: Option<&Identity>, review: &Review) -> bool {
    review.status == Status::Approved
        || caller
            .is_some_and(|caller| caller.is_admin() || caller.customer_id == review.customer_id)
}

/// The review named in the path, if the caller may see it; 404 otherwise.
fn visible_review(ctx: &Context) -> Result<Review> {
    let review = find_review(ctx.param("id")?)?;
    if can_see(ctx.caller(), &review) {
        Ok(review)
    } else {
        Err(not_found())
    }
}

fn find_review(id: &str) -> Result<Review> {
    store::find(id)?.ok_or_else(not_found)
}

fn not_found() -> Error {
    NOT_FOUND.error("no review has this id")
}

/// The good with this id, from the inventory; 404 if there is none.
fn find_good(id: &str) -> Result<Good> {
    services::good(id)?.ok_or_else(|| GOOD_NOT_FOUND.error("no good has this id"))
}

/// Where a review lives in the API (ids are UUIDs: nothing to encode).
fn review_path(id: &str) -> String {
    format!("/api/v1/reviews/{id}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::{PageRequest, Request, Role};

    fn review(status: Status, author: &str) -> Review {
        Review {
            id: "r1".into(),
            good_id: "g1".into(),
            good_name: "Tea".into(),
            customer_id: author.into(),
            username: "alice".into(),
            rating: 4,
            comment: String::new(),
            status,
            verified_purchase: false,
            created_at: "2026-11-21T10:00:00Z".into(),
            updated_at: "2026-11-21T10:00:00Z".into(),
        }
    }

    fn identity(id: &str, role: Role) -> Identity {
        Identity {
            customer_id: id.into(),
            username: id.into(),
            role,
        }
    }

    fn context(query: &str, caller: Option<Identity>) -> Context {
        let request = Request {
            method: "GET".into(),
            path: "/api/v1/reviews/good/g1".into(),
            query: query.into(),
            headers: vec![],
            body: vec![],
            caller,
            request_id: "r".into(),
        };
        Context::new(request, vec![("good_id".into(), "g1".into())]).unwrap()
    }

    fn fields(error: Error) -> Vec<String> {
        match error {
            Error::InvalidInput(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn approved_reviews_are_public_and_others_private() {
        let author = identity("c1", Role::Customer);
        let other = identity("c2", Role::Customer);
        let admin = identity("a1", Role::Admin);
        for status in [Status::Pending, Status::Flagged] {
            let hidden = review(status, "c1");
            assert!(!can_see(None, &hidden));
            assert!(!can_see(Some(&other), &hidden));
            assert!(can_see(Some(&author), &hidden));
            assert!(can_see(Some(&admin), &hidden));
        }
        let public = review(Status::Approved, "c1");
        assert!(can_see(None, &public));
        assert!(can_see(Some(&other), &public));
    }

    #[test]
    fn only_admins_may_filter_by_status() {
        assert_eq!(status_filter(&context("", None)).unwrap(), None);
        assert!(matches!(
            status_filter(&context("status=pending", None)),
            Err(Error::Unauthorized(_))
        ));
        let customer = Some(identity("c1", Role::Customer));
        assert!(matches!(
            status_filter(&context("status=approved", customer)),
            Err(Error::Forbidden(_))
        ));
        let admin = Some(identity("a1", Role::Admin));
        assert_eq!(
            status_filter(&context("status=Flagged", admin.clone())).unwrap(),
            Some(Status::Flagged)
        );
        assert_eq!(
            fields(status_filter(&context("status=gone", admin)).unwrap_err()),
            ["status"]
        );
    }

    #[test]
    fn bad_paging_and_status_are_reported_together() {
        let admin = Some(identity("a1", Role::Admin));
        let ctx = context("limit=0&offset=-1&status=nope", admin);
        let error = both(ctx.page(), status_filter(&ctx)).unwrap_err();
        assert_eq!(fields(error), ["limit", "offset", "status"]);
    }

    #[test]
    fn permission_errors_win_over_bad_fields() {
        let customer = Some(identity("c1", Role::Customer));
        let ctx = context("limit=0&status=pending", customer);
        assert!(matches!(
            both(ctx.page(), status_filter(&ctx)),
            Err(Error::Forbidden(_))
        ));
        let invalid: Result<()> = Err(Error::invalid("limit", "bad"));
        assert!(matches!(
            both(invalid, Err::<(), _>(Error::unauthorized("x"))),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn list_responses_carry_the_average_rating() {
        let reviews = [review(Status::Approved, "c1")];
        let body = serde_json::to_value(GoodReviews {
            page: Page::new(PageRequest::default(), &reviews[..], 1),
            average_rating: average_rating(13, 3),
        })
        .unwrap();
        assert_eq!(body["total"], 1);
        assert_eq!(body["limit"], 50);
        assert_eq!(body["offset"], 0);
        assert_eq!(body["items"][0]["id"], "r1");
        assert_eq!(body["average_rating"], 4.33);

        let empty = serde_json::to_value(GoodReviews {
            page: Page::new(PageRequest::default(), &[][..], 0),
            average_rating: None,
        })
        .unwrap();
        assert!(empty["average_rating"].is_null());
        assert!(empty.as_object().unwrap().contains_key("average_rating"));
    }

    #[test]
    fn every_route_has_a_distinct_method_and_pattern() {
        let mut routes: Vec<_> = router()
            .routes()
            .map(|route| (route.method(), route.pattern()))
            .collect();
        let count = routes.len();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(routes.len(), count);
    }

    #[test]
    fn anonymous_writes_are_unauthorized() {
        for (method, path) in [
            ("POST", "/api/v1/reviews"),
            ("PATCH", "/api/v1/reviews/r1"),
            ("DELETE", "/api/v1/reviews/r1"),
            ("POST", "/api/v1/reviews/r1/flag"),
            ("POST", "/api/v1/reviews/r1/moderate"),
            ("GET", "/api/v1/reviews"),
        ] {
            let request = Request {
                method: method.into(),
                path: path.into(),
                query: String::new(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{}".to_vec(),
                caller: None,
                request_id: "r".into(),
            };
            assert!(
                matches!(router().handle(request), Err(Error::Unauthorized(_))),
                "{method} {path}"
            );
        }
    }
}
