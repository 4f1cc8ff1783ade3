//! The `reviews` and `reviews_moderation` tables: every statement this
//! component runs, and the mapping between rows and [`Review`].
//!
//! Statements name only the columns they set and bind only non-NULL values,
//! so no statement depends on how a backend types a NULL parameter. Lists are
//! newest first, with the id (a UUIDv7, so ordered by creation) breaking ties
//! between reviews made in the same second.

use serde::Serialize;
use souk_sdk::db::{self, DbError, Row, Value, params};
use souk_sdk::{Describe, PageRequest, Timestamp};

use crate::domain::{Comment, Rating, Status};

/// The columns of [`Review`], in `SELECT` and `RETURNING` clauses.
const COLUMNS: &str = "id, good_id, good_name, customer_id, username, rating, comment, status, \
                       verified_purchase, created_at, updated_at";

/// Newest first; ids are UUIDv7, so they order reviews made in one second.
const NEWEST_FIRST: &str = "ORDER BY created_at DESC, id DESC";

/// A review as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Describe)]
pub struct Review {
    /// Opaque id (UUIDv7).
    pub id: String,
    /// The good reviewed.
    pub good_id: String,
    /// The good's name when the review was submitted.
    pub good_name: String,
    /// The author's customer id: decides ownership, never shown.
    #[serde(skip)]
    pub customer_id: String,
    /// The author's username.
    pub username: String,
    /// 1 to 5 stars.
    #[describe(with = Rating)]
    pub rating: u8,
    /// Plain text with markup removed (HTML-safe; see `NewReview.comment`).
    pub comment: String,
    /// Moderation status.
    pub status: Status,
    /// Whether the author had bought the good when submitting or last
    /// editing the review.
    pub verified_purchase: bool,
    /// RFC 3339, UTC.
    #[describe(with = Timestamp)]
    pub created_at: String,
    /// Last change of rating, comment or status.
    #[describe(with = Timestamp)]
    pub updated_at: String,
}

impl Review {
    fn from_row(row: &Row) -> Result<Review, DbError> {
        let stars = row.int("rating")?;
        let rating = Rating::from_stored(stars)
            .ok_or_else(|| DbError::Failed(format!("rating {stars} stored")))?;
        let status = row.text("status")?;
        let status = Status::parse(&status)
            .map_err(|_| DbError::Failed(format!("unknown status `{status}` stored")))?;
        Ok(Review {
            id: row.text("id")?,
            good_id: row.text("good_id")?,
            good_name: row.text("good_name")?,
            customer_id: row.text("customer_id")?,
            username: row.text("username")?,
            rating: rating.stars(),
            comment: row.text("comment")?,
            status,
            verified_purchase: row.bool("verified_purchase")?,
            created_at: row.text("created_at")?,
            updated_at: row.text("updated_at")?,
        })
    }
}

/// A submitted review that passed validation.
#[derive(Debug)]
pub struct NewReview<'a> {
    /// Fresh UUIDv7.
    pub id: &'a str,
    /// The good, known to exist.
    pub good_id: &'a str,
    /// The good's current name.
    pub good_name: &'a str,
    /// The author's customer id.
    pub customer_id: &'a str,
    /// The author's username.
    pub username: &'a str,
    /// The rating.
    pub rating: Rating,
    /// The comment, markup removed.
    pub comment: &'a Comment,
    /// Whether the author has bought the good.
    pub verified_purchase: bool,
    /// Creation time, also the first `updated_at`.
    pub now: &'a str,
}

/// Inserts a `pending` review. A second review of the same good by the same
/// customer fails with a unique constraint violation.
pub fn insert(new: &NewReview<'_>) -> Result<Review, DbError> {
    let row = db::query_one(
        &format!(
            "INSERT INTO reviews (id, good_id, good_name, customer_id, username, rating, \
             comment, status, verified_purchase, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING {COLUMNS}"
        ),
        params![
            new.id,
            new.good_id,
            new.good_name,
            new.customer_id,
            new.username,
            i64::from(new.rating.stars()),
            new.comment.as_str(),
            Status::Pending.as_str(),
            new.verified_purchase,
            new.now,
        ],
    )?;
    Review::from_row(&row)
}

/// The review with this id.
pub fn find(id: &str) -> Result<Option<Review>, DbError> {
    db::query_opt(
        &format!("SELECT {COLUMNS} FROM reviews WHERE id = $1"),
        params![id],
    )?
    .map(|row| Review::from_row(&row))
    .transpose()
}

/// Whether the customer has already reviewed the good.
pub fn exists_for(good_id: &str, customer_id: &str) -> Result<bool, DbError> {
    let row = db::query_opt(
        "SELECT id FROM reviews WHERE good_id = $1 AND customer_id = $2",
        params![good_id, customer_id],
    )?;
    Ok(row.is_some())
}

/// An edit by the author that passed validation; `None` keeps a column.
#[derive(Debug, Default)]
pub struct Edit {
    /// New rating.
    pub rating: Option<Rating>,
    /// New comment, markup removed.
    pub comment: Option<Comment>,
}

/// The UPDATE for `edit` of review `id`: the changed columns, and always the
/// purchase flag, `status = pending` (an edited review is moderated again)
/// and `updated_at`.
fn edit_statement(
    id: &str,
    edit: &Edit,
    verified_purchase: bool,
    now: &str,
) -> (String, Vec<Value>) {
    let mut assignments: Vec<(&'static str, Value)> = Vec::new();
    if let Some(rating) = edit.rating {
        assignments.push(("rating", i64::from(rating.stars()).into()));
    }
    if let Some(comment) = &edit.comment {
        assignments.push(("comment", comment.as_str().into()));
    }
    assignments.push(("status", Status::Pending.as_str().into()));
    assignments.push(("verified_purchase", verified_purchase.into()));
    assignments.push(("updated_at", now.into()));

    let mut params = Vec::with_capacity(assignments.len() + 1);
    let mut set = Vec::with_capacity(assignments.len());
    for (column, value) in assignments {
        params.push(value);
        set.push(format!("{column} = ${}", params.len()));
    }
    params.push(id.into());
    let sql = format!(
        "UPDATE reviews SET {} WHERE id = ${} RETURNING {COLUMNS}",
        set.join(", "),
        params.len()
    );
    (sql, params)
}

/// Applies the author's `edit` to review `id`; `None` if it is gone.
pub fn edit(
    id: &str,
    edit: &Edit,
    verified_purchase: bool,
    now: &str,
) -> Result<Option<Review>, DbError> {
    let (sql, params) = edit_statement(id, edit, verified_purchase, now);
    db::query_opt(&sql, &params)?
        .map(|row| Review::from_row(&row))
        .transpose()
}

/// A flag or a moderation decision, for the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A user reported the review.
    Flag,
    /// An admin decided on the review.
    Moderate,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Flag => "flag",
            Action::Moderate => "moderate",
        }
    }
}

/// Sets the status of review `id` and records who did it and why; the
/// review after, or `None` if it is gone.
pub fn set_status(
    id: &str,
    status: Status,
    action: Action,
    actor_id: &str,
    note: &str,
    now: &str,
) -> Result<Option<Review>, DbError> {
    let Some(row) = db::query_opt(
        &format!(
            "UPDATE reviews SET status = $1, updated_at = $2 WHERE id = $3 RETURNING {COLUMNS}"
        ),
        params![status.as_str(), now, id],
    )?
    else {
        return Ok(None);
    };
    db::execute(
        "INSERT INTO reviews_moderation (id, review_id, action, actor_id, status, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![
            souk_sdk::new_id(),
            id,
            action.as_str(),
            actor_id,
            status.as_str(),
            note,
            now
        ],
    )?;
    Review::from_row(&row).map(Some)
}

/// Deletes review `id` and its moderation trail; whether a review was deleted.
pub fn delete(id: &str) -> Result<bool, DbError> {
    db::execute(
        "DELETE FROM reviews_moderation WHERE review_id = $1",
        params![id],
    )?;
    Ok(db::execute("DELETE FROM reviews WHERE id = $1", params![id])? > 0)
}

/// Which reviews of a list the caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visible<'a> {
    /// Only reviews with this status.
    Status(Status),
    /// Approved reviews, and every review by this customer.
    ApprovedOrBy(&'a str),
    /// Every review.
    All,
}

/// A `WHERE` clause under construction, with its parameters.
#[derive(Debug, Default)]
struct Filter {
    conditions: Vec<String>,
    params: Vec<Value>,
}

impl Filter {
    /// The next parameter placeholder for `value`.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    fn visible(&mut self, visible: Visible<'_>) {
        match visible {
            Visible::Status(status) => {
                let status = self.bind(status.as_str());
                self.and(format!("status = {status}"));
            }
            Visible::ApprovedOrBy(customer_id) => {
                let approved = self.bind(Status::Approved.as_str());
                let customer = self.bind(customer_id);
                self.and(format!("(status = {approved} OR customer_id = {customer})"));
            }
            Visible::All => {}
        }
    }

    fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// A page of the reviews matching the filter, newest first, and how many
    /// match in all.
    fn page(mut self, page: PageRequest) -> Result<(Vec<Review>, i64), DbError> {
        let clause = self.clause();
        let total = db::query_one(
            &format!("SELECT count(*) AS total FROM reviews {clause}"),
            &self.params,
        )?
        .int("total")?;
        let limit = self.bind(page.limit);
        let offset = self.bind(page.offset);
        let reviews = db::query(
            &format!(
                "SELECT {COLUMNS} FROM reviews {clause} {NEWEST_FIRST} LIMIT {limit} OFFSET {offset}"
            ),
            &self.params,
        )?
        .map(|row| Review::from_row(&row))?;
        Ok((reviews, total))
    }
}

/// A page of the reviews of good `good_id` that are `visible`.
pub fn list_for_good(
    good_id: &str,
    visible: Visible<'_>,
    page: PageRequest,
) -> Result<(Vec<Review>, i64), DbError> {
    let mut filter = Filter::default();
    let good = filter.bind(good_id);
    filter.and(format!("good_id = {good}"));
    filter.visible(visible);
    filter.page(page)
}

/// A page of the reviews written under `username` (ignoring case) that are
/// `visible`.
pub fn list_for_username(
    username: &str,
    visible: Visible<'_>,
    page: PageRequest,
) -> Result<(Vec<Review>, i64), DbError> {
    let mut filter = Filter::default();
    let username = filter.bind(username);
    filter.and(format!("lower(username) = lower({username})"));
    filter.visible(visible);
    filter.page(page)
}

/// A page of every review that is `visible`.
pub fn list_all(visible: Visible<'_>, page: PageRequest) -> Result<(Vec<Review>, i64), DbError> {
    let mut filter = Filter::default();
    filter.visible(visible);
    filter.page(page)
}

/// The sum and the number of the approved ratings of good `good_id`.
pub fn approved_rating_totals(good_id: &str) -> Result<(i64, i64), DbError> {
    let row = db::query_one(
        "SELECT CAST(coalesce(sum(rating), 0) AS BIGINT) AS stars, count(*) AS ratings \
         FROM reviews WHERE good_id = $1 AND status = $2",
        params![good_id, Status::Approved.as_str()],
    )?;
    Ok((row.int("stars")?, row.int("ratings")?))
}

/// One approved rating: (customer id, good id, stars).
pub type ApprovedRating = (String, String, u8);

/// At most `limit` approved ratings, most recently changed first.
pub fn approved_ratings(limit: u32) -> Result<Vec<ApprovedRating>, DbError> {
    db::query(
        "SELECT customer_id, good_id, rating FROM reviews WHERE status = $1 \
         ORDER BY updated_at DESC, id DESC LIMIT $2",
        params![Status::Approved.as_str(), limit],
    )?
    .map(|row| {
        let stars = row.int("rating")?;
        let rating = Rating::from_stored(stars)
            .ok_or_else(|| DbError::Failed(format!("rating {stars} stored")))?;
        Ok((
            row.text("customer_id")?,
            row.text("good_id")?,
            rating.stars(),
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::Field;

    fn row(columns: &[&str], values: Vec<Value>) -> Row {
        db::Rows::from(souk_sdk::wit::db::Rows {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: vec![values],
        })
        .single()
        .unwrap()
    }

    fn stored(rating: i64, status: &str, verified: Value) -> Row {
        row(
            &[
                "id",
                "good_id",
                "good_name",
                "customer_id",
                "username",
                "rating",
                "comment",
                "status",
                "verified_purchase",
                "created_at",
                "updated_at",
            ],
            vec![
                "r1".into(),
                "g1".into(),
                "Tea".into(),
                "c1".into(),
                "alice".into(),
                Value::Integer(rating),
                "nice".into(),
                status.into(),
                verified,
                "2026-11-21T10:00:00Z".into(),
                "2026-11-21T10:00:00Z".into(),
            ],
        )
    }

    #[test]
    fn rows_become_reviews_and_hide_the_customer_id() {
        let review = Review::from_row(&stored(4, "approved", Value::Integer(1))).unwrap();
        assert_eq!(review.rating, 4);
        assert_eq!(review.status, Status::Approved);
        assert!(review.verified_purchase);
        let json = serde_json::to_value(&review).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "comment",
                "created_at",
                "good_id",
                "good_name",
                "id",
                "rating",
                "status",
                "updated_at",
                "username",
                "verified_purchase"
            ]
        );
        assert_eq!(json["status"], "approved");
        assert_eq!(json["verified_purchase"], true);
    }

    #[test]
    fn postgres_booleans_are_read_too() {
        let review = Review::from_row(&stored(1, "pending", Value::Boolean(false))).unwrap();
        assert!(!review.verified_purchase);
    }

    #[test]
    fn corrupt_rows_are_failures_not_panics() {
        assert!(Review::from_row(&stored(9, "approved", Value::Integer(0))).is_err());
        assert!(Review::from_row(&stored(3, "deleted", Value::Integer(0))).is_err());
    }

    #[test]
    fn edits_name_only_the_changed_columns_and_reset_the_status() {
        let edit = Edit {
            rating: Some(Rating::parse(2).unwrap()),
            comment: None,
        };
        let (sql, params) = edit_statement("r1", &edit, true, "2026-11-21T10:00:00Z");
        assert_eq!(
            sql,
            format!(
                "UPDATE reviews SET rating = $1, status = $2, verified_purchase = $3, \
                 updated_at = $4 WHERE id = $5 RETURNING {COLUMNS}"
            )
        );
        assert_eq!(
            params,
            vec![
                Value::Integer(2),
                Value::Text("pending".into()),
                Value::Boolean(true),
                Value::Text("2026-11-21T10:00:00Z".into()),
                Value::Text("r1".into()),
            ]
        );
    }

    #[test]
    fn comment_edits_bind_the_stripped_text() {
        let edit = Edit {
            rating: None,
            comment: Some(Comment::parse("<b>ok</b>".into()).unwrap()),
        };
        let (sql, params) = edit_statement("r1", &edit, false, "now");
        assert!(
            sql.starts_with("UPDATE reviews SET comment = $1, status = $2"),
            "{sql}"
        );
        assert_eq!(params[0], Value::Text("ok".into()));
    }

    #[test]
    fn filters_bind_their_values_in_order() {
        let mut filter = Filter::default();
        let good = filter.bind("g1");
        filter.and(format!("good_id = {good}"));
        filter.visible(Visible::ApprovedOrBy("c1"));
        assert_eq!(
            filter.clause(),
            "WHERE good_id = $1 AND (status = $2 OR customer_id = $3)"
        );
        assert_eq!(
            filter.params,
            vec![
                Value::Text("g1".into()),
                Value::Text("approved".into()),
                Value::Text("c1".into())
            ]
        );

        let mut everything = Filter::default();
        everything.visible(Visible::All);
        assert_eq!(everything.clause(), "");

        let mut flagged = Filter::default();
        flagged.visible(Visible::Status(Status::Flagged));
        assert_eq!(flagged.clause(), "WHERE status = $1");
    }
}
