//! A review's fields as validated types. Each is a [`Field`] rule: its
//! `parse` checks one API.md rule once, and its schema documents the same
//! limits; handlers and the store only ever see values that passed. The
//! error strings are the messages shown to the client for the field.
//!
//! Free text (a comment, a flag reason, a moderation note) is plain text:
//! control characters other than newline and tab are refused, then HTML
//! markup is removed by [`strip_markup`] before the text is stored.

use std::fmt;

use souk_sdk::{Describe, Field, Schema, Schemas};

/// What a comment's, reason's or note's schema says beyond its length.
const PLAIN_TEXT_DOC: &str = "Plain text, 0..2000 characters as sent; control characters other \
    than newline and tab are refused. HTML markup (tags, comments, and the contents of `script` \
    and `style`) is removed before storage with an HTML sanitiser, and the stored text is \
    HTML-safe: `&`, `<`, `>` and no-break spaces are stored and returned as `&amp;`, `&lt;`, \
    `&gt;` and `&nbsp;`. Sending a returned comment back stores the same text.";

/// Longest comment, in characters as the client sent them.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Longest flag reason or moderation note, in characters as sent.
pub const MAX_NOTE_CHARS: usize = 500;

/// A star rating: an integer from 1 to 5. The JSON decoder has already
/// refused `4.5` and `"4"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(u8);

impl Describe for Rating {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::integer().range(1, 5)
    }
}

impl Field for Rating {
    type Input = i64;
    type Output = Rating;
    type Error = &'static str;

    /// Checks the range.
    fn parse(stars: i64) -> Result<Rating, &'static str> {
        match u8::try_from(stars) {
            Ok(stars @ 1..=5) => Ok(Rating(stars)),
            _ => Err("must be an integer from 1 to 5"),
        }
    }
}

impl Rating {
    /// A rating read back from the database, where a CHECK keeps it in range.
    pub fn from_stored(stars: i64) -> Option<Rating> {
        Rating::parse(stars).ok()
    }

    /// The number of stars.
    pub fn stars(self) -> u8 {
        self.0
    }
}

/// A review comment: 0..=2000 characters of plain text, stored with its
/// markup removed (see [`strip_markup`]). The default is the empty comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comment(String);

impl Describe for Comment {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
            .max_length(MAX_COMMENT_CHARS)
            .doc(PLAIN_TEXT_DOC)
    }
}

impl Field for Comment {
    type Input = String;
    type Output = Comment;
    type Error = String;

    /// Checks the characters and the length, then strips markup.
    fn parse(text: String) -> Result<Comment, String> {
        plain_text(&text, MAX_COMMENT_CHARS).map(Comment)
    }
}

impl Comment {
    /// The text as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A flag reason or a moderation note: 0..=500 characters of plain text,
/// stored (never shown in a review) with its markup removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note(String);

impl Describe for Note {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
            .max_length(MAX_NOTE_CHARS)
            .doc("Optional plain text, 0..500 characters, with the same rules as a review comment.")
    }
}

impl Field for Note {
    type Input = String;
    type Output = Note;
    type Error = String;

    /// Checks the characters and the length, then strips markup.
    fn parse(text: String) -> Result<Note, String> {
        plain_text(&text, MAX_NOTE_CHARS).map(Note)
    }
}

impl Note {
    /// The text as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A good id as the client sent it. Ids are opaque, so the only check is
/// that there is one; whether a good has it is the inventory's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodId(String);

impl Describe for GoodId {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string().min_length(1).doc("An existing good's id.")
    }
}

impl Field for GoodId {
    type Input = String;
    type Output = GoodId;
    type Error = &'static str;

    /// Checks that the id is not blank.
    fn parse(text: String) -> Result<GoodId, &'static str> {
        if text.trim().is_empty() {
            Err("must be the id of a good")
        } else {
            Ok(GoodId(text))
        }
    }
}

impl GoodId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a review stands in moderation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// New or edited, waiting for an admin; visible to its author and admins.
    Pending,
    /// Visible to everyone and counted in the average rating.
    Approved,
    /// Reported by a user or held back by an admin; hidden like `pending`.
    Flagged,
}

impl Status {
    /// Every status, in the order the API lists them.
    pub const ALL: [Status; 3] = [Status::Pending, Status::Approved, Status::Flagged];

    /// Parses a status name, ignoring case.
    pub fn parse(text: &str) -> Result<Status, &'static str> {
        Status::ALL
            .into_iter()
            .find(|status| text.eq_ignore_ascii_case(status.as_str()))
            .ok_or("must be one of: pending, approved, flagged")
    }

    /// The lower-case name stored and returned.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Flagged => "flagged",
        }
    }
}

impl Describe for Status {
    const NAME: Option<&'static str> = Some("ReviewStatus");

    fn describe(_: &mut Schemas) -> Schema {
        Schema::one_of(&Status::ALL.map(Status::as_str)).doc(
            "`pending` until an admin decides (and again after an edit); `approved` is public; \
             `flagged` is hidden.",
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An admin's decision on a review: `approved` or `flagged` (a review cannot
/// be sent back to `pending` by moderation; editing it does that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict(Status);

impl Verdict {
    /// The statuses moderation may give.
    const CHOICES: [Status; 2] = [Status::Approved, Status::Flagged];
}

impl Describe for Verdict {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::one_of(&Verdict::CHOICES.map(Status::as_str))
            .doc("The decision (case-insensitive).")
    }
}

impl Field for Verdict {
    type Input = String;
    type Output = Verdict;
    type Error = &'static str;

    /// Parses `approved` or `flagged`, ignoring case.
    fn parse(text: String) -> Result<Verdict, &'static str> {
        match Status::parse(&text) {
            Ok(status) if Verdict::CHOICES.contains(&status) => Ok(Verdict(status)),
            _ => Err("must be one of: approved, flagged"),
        }
    }
}

impl Verdict {
    /// The status the review gets.
    pub fn status(self) -> Status {
        self.0
    }
}

/// The mean of `count` ratings adding up to `stars`, rounded half up to two
/// decimals; `None` when there are no ratings. Computed in integers, so
/// `4.125` is `4.13` and not whatever a float makes of it.
pub fn average_rating(stars: i64, count: i64) -> Option<f64> {
    if count <= 0 || stars < 0 {
        return None;
    }
    // Hundredths, rounded half up: (200 * stars + count) / (2 * count).
    let hundredths = stars.checked_mul(200)?.checked_add(count)? / count.checked_mul(2)?;
    // Ratings are at most 5, so `hundredths` is at most 500: exact in f64.
    #[allow(clippy::cast_precision_loss)]
    let hundredths = hundredths as f64;
    Some(hundredths / 100.0)
}

/// Checks free text against the plain-text rules and strips its markup:
/// no control characters other than `\n` and `\t`, at most `max_chars`
/// characters as sent.
fn plain_text(text: &str, max_chars: usize) -> Result<String, String> {
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters other than newline and tab".to_owned());
    }
    if text.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    Ok(strip_markup(text))
}

/// Removes every HTML tag and comment from `text`, keeping the text between
/// tags; the contents of `script` and `style` elements are dropped whole.
///
/// This is `ammonia` with no tag allowed: the text is parsed the way a
/// browser would parse it, so malformed or obfuscated markup cannot slip
/// through, and serialised back as HTML text. The result is therefore safe
/// to put into a page as is: `&`, `<`, `>` and no-break spaces come out as
/// the entities `&amp;`, `&lt;`, `&gt;` and `&nbsp;`. Nothing is decoded on
/// top of that, so an escaped `&lt;script&gt;` stays escaped, and stripping
/// is idempotent: sending a stored comment back stores the same text.
pub fn strip_markup(text: &str) -> String {
    // Plain text needs no parser; this is also the common case.
    if !text.contains(['<', '>', '&', '\u{a0}']) {
        return text.to_owned();
    }
    ammonia::Builder::empty().clean(text).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::field::disagreements;

    #[test]
    fn every_rule_agrees_with_its_schema() {
        for problems in [
            disagreements::<Rating>(),
            disagreements::<Comment>(),
            disagreements::<Note>(),
            disagreements::<GoodId>(),
            disagreements::<Verdict>(),
        ] {
            assert_eq!(problems, Vec::<String>::new());
        }
    }

    #[test]
    fn ratings_are_integers_from_one_to_five() {
        for stars in 1..=5 {
            assert_eq!(Rating::parse(stars).unwrap().stars(), stars as u8);
        }
        for bad in [0, 6, -1, 256, 261, i64::MAX, i64::MIN] {
            assert!(Rating::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn averages_are_rounded_half_up_to_two_decimals() {
        assert_eq!(average_rating(0, 0), None);
        assert_eq!(average_rating(5, 1), Some(5.0));
        assert_eq!(average_rating(9, 2), Some(4.5));
        assert_eq!(average_rating(13, 3), Some(4.33));
        assert_eq!(average_rating(14, 3), Some(4.67));
        assert_eq!(average_rating(33, 8), Some(4.13)); // 4.125
        assert_eq!(average_rating(1, 6), Some(0.17)); // 0.1666...
        assert_eq!(average_rating(i64::MAX, 1), None);
    }

    #[test]
    fn averages_serialize_with_at_most_two_decimals() {
        for (stars, count, text) in [
            (13, 3, "4.33"),
            (14, 3, "4.67"),
            (10, 2, "5.0"),
            (7, 3, "2.33"),
        ] {
            let value = average_rating(stars, count).unwrap();
            assert_eq!(serde_json::to_string(&value).unwrap(), text);
        }
    }

    #[test]
    fn tags_are_removed_and_their_text_kept() {
        assert_eq!(strip_markup("<b>great</b> value"), "great value");
        assert_eq!(
            strip_markup("<p>one</p><p>two <i>three</i></p>"),
            "onetwo three"
        );
        assert_eq!(
            strip_markup("<a href=\"javascript:alert(1)\" onclick=x>link</a>"),
            "link"
        );
    }

    #[test]
    fn script_and_style_contents_are_dropped() {
        assert_eq!(strip_markup("<b>great</b><script>x</script>"), "great");
        assert_eq!(strip_markup("ok<style>body{display:none}</style>!"), "ok!");
        assert_eq!(strip_markup("<SCRIPT>alert(1)</SCRIPT>fine"), "fine");
    }

    #[test]
    fn comments_and_malformed_markup_are_removed() {
        assert_eq!(strip_markup("a<!-- hidden -->b"), "ab");
        assert_eq!(strip_markup("<img src=x onerror=alert(1)>pic"), "pic");
        assert_eq!(strip_markup("<b>unclosed"), "unclosed");
        assert_eq!(strip_markup("<<b>b</b>"), "&lt;b");
        // Foreign content (SVG, MathML) goes whole.
        assert_eq!(strip_markup("<svg><g onload=alert(1)>x</g></svg>ok"), "ok");
    }

    #[test]
    fn stored_text_is_html_safe_and_nothing_is_decoded() {
        assert_eq!(strip_markup("5 > 3 & 2 < 4"), "5 &gt; 3 &amp; 2 &lt; 4");
        assert_eq!(
            strip_markup("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert!(!strip_markup("&lt;b&gt;").contains('<'));
    }

    #[test]
    fn stripping_is_idempotent() {
        for text in [
            "<b>great</b><script>x</script>",
            "5 > 3 & 2 < 4",
            "&lt;script&gt;",
            "a\u{a0}b",
            "fish &amp; chips",
            "line one\nline two\tend",
        ] {
            let once = strip_markup(text);
            assert_eq!(strip_markup(&once), once, "{text}");
        }
    }

    #[test]
    fn the_plain_text_shortcut_agrees_with_the_sanitiser() {
        for text in [
            "",
            "Great product!",
            "line one\nline two\tend",
            "  spaced  ",
            "naïve café 👍",
        ] {
            assert_eq!(ammonia::Builder::empty().clean(text).to_string(), text);
        }
    }

    #[test]
    fn plain_text_is_kept_as_is() {
        for text in [
            "",
            "Great product!",
            "line one\nline two\tend",
            "naïve café 👍",
        ] {
            assert_eq!(strip_markup(text), text);
            assert_eq!(Comment::parse(text.to_owned()).unwrap().as_str(), text);
        }
    }

    #[test]
    fn comments_refuse_control_characters_but_newline_and_tab() {
        for bad in [
            "a\u{0}b",
            "bell\u{7}",
            "cr\r\nlf",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(Comment::parse(bad.to_owned()).is_err(), "{bad:?}");
        }
        assert!(Comment::parse("tab\there\nnewline".to_owned()).is_ok());
    }

    #[test]
    fn comment_length_counts_characters_as_sent() {
        assert!(Comment::parse("é".repeat(MAX_COMMENT_CHARS)).is_ok());
        assert!(Comment::parse("é".repeat(MAX_COMMENT_CHARS + 1)).is_err());
        // Markup counts: the limit is on what the client sent.
        assert!(Comment::parse(format!("<b>{}</b>", "x".repeat(1995))).is_err());
    }

    #[test]
    fn notes_follow_the_plain_text_rules_with_their_own_limit() {
        assert_eq!(Note::parse("<i>spam</i>".into()).unwrap().as_str(), "spam");
        assert!(Note::parse("x".repeat(MAX_NOTE_CHARS)).is_ok());
        assert!(Note::parse("x".repeat(MAX_NOTE_CHARS + 1)).is_err());
        assert!(Note::parse("a\u{8}".into()).is_err());
        assert_eq!(Note::default().as_str(), "");
    }

    #[test]
    fn good_ids_must_not_be_blank() {
        assert_eq!(GoodId::parse("g-1".into()).unwrap().as_str(), "g-1");
        assert!(GoodId::parse(String::new()).is_err());
        assert!(GoodId::parse("  ".into()).is_err());
    }

    #[test]
    fn statuses_parse_ignoring_case_and_print_lower_case() {
        assert_eq!(Status::parse("Approved").unwrap(), Status::Approved);
        assert_eq!(Status::parse("pending").unwrap().as_str(), "pending");
        assert!(Status::parse("deleted").is_err());
        assert_eq!(
            serde_json::to_string(&Status::Flagged).unwrap(),
            "\"flagged\""
        );
    }

    #[test]
    fn verdicts_are_approved_or_flagged() {
        assert_eq!(
            Verdict::parse("approved".into()).unwrap().status(),
            Status::Approved
        );
        assert_eq!(
            Verdict::parse("FLAGGED".into()).unwrap().status(),
            Status::Flagged
        );
        assert!(Verdict::parse("pending".into()).is_err());
        assert!(Verdict::parse(String::new()).is_err());
    }
}
