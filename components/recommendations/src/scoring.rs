//! The ranking, as a pure function of purchases, approved ratings and the
//! catalog: no imports, so it is unit-tested natively with rankings worked
//! out by hand.
//!
//! # Inputs
//!
//! - Purchases `(customer, good, quantity)`. The purchase matrix is binary:
//!   `B(g)` is the set of customers who bought good `g` at least once
//!   (quantities count only for best sellers).
//! - Approved ratings `(customer, good, stars)`, stars 1..5, centred on the
//!   middle of the scale: `d(c, g) = stars - 3`, so 4-5 stars are positive,
//!   1-2 negative and 3 neutral (0). Absent ratings are 0 too.
//! - The catalog: each good's name and whether it is in stock now. A good
//!   not in the catalog (deleted) is never recommended.
//!
//! # Who is the customer `u`
//!
//! `bought(u)` is the goods `u` bought; `rated(u)` the goods `u` rated.
//! Only goods in neither set, in the catalog and in stock are *eligible*.
//!
//! # Item-to-item similarity
//!
//! - Co-purchase (cosine over the binary customer × good matrix):
//!   `sim_p(i, j) = |B(i) ∩ B(j)| / sqrt(|B(i)| · |B(j)|)`, in 0..1.
//! - Rating (cosine over the centred ratings):
//!   `sim_r(i, j) = Σ_c d(c,i)·d(c,j) / (‖d(i)‖ · ‖d(j)‖)`, in -1..1, where
//!   `‖d(g)‖ = sqrt(Σ_c d(c,g)²)`; 0 when either norm is 0. It is positive
//!   when customers who liked one liked the other.
//!
//! Every customer counts, `u` included (as usual in item-based filtering:
//! `u` adds nothing to the numerator for a good `u` has not touched).
//!
//! # Score of an eligible good `j`
//!
//! ```text
//! score(j) = Σ_{i ∈ bought(u)} sim_p(i, j)  +  Σ_{i ∈ rated(u)} w(u, i) · sim_r(i, j)
//! w(u, i)  = d(u, i) / 2        (-1, -0.5, 0, 0.5 or 1)
//! ```
//!
//! Each summand is a *term* from one of `u`'s goods `i`. The score is
//! rounded to 6 decimals (half away from zero) before anything compares it,
//! so goods whose exact scores are equal tie even after floating point.
//! Goods with a rounded score above 0 are ranked by score (highest first),
//! then by name ignoring case, then by id. The `reason` names the good `i`
//! of the largest term (rounded the same way; ties by `i`'s name, then id):
//! "bought together with NAME" for a co-purchase term, "liked by customers
//! who liked NAME" for a rating term where `u` rated `i` high, "liked by
//! customers who disliked NAME" where `u` rated `i` low; if no positive
//! term's good is still in the catalog, "similar to what you bought or
//! rated".
//!
//! # Filling up
//!
//! When fewer than `limit` goods score above 0 (always, for a customer with
//! no history), the rest come, with score 0, from two lists of eligible
//! goods not listed yet, taken in turn (best seller first, then top rated,
//! then the next best seller, ...; when one list runs out the other
//! continues):
//!
//! - best sellers: units sold (Σ quantity over all purchases), most first;
//!   ties by name ignoring case, then id.
//! - top rated: goods whose damped mean `(Σ stars + 3) / (n + 1)` (the mean
//!   with one extra neutral 3-star rating, so one 5-star rating does not
//!   beat many 4s) is above 3, i.e. `Σ d > 0`; highest damped mean first,
//!   then more ratings first, then name ignoring case, then id. Compared
//!   exactly, in integers.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One recorded purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase<'a> {
    /// The buyer's customer id.
    pub customer: &'a str,
    /// The good's id.
    pub good: &'a str,
    /// Units bought.
    pub quantity: i64,
}

/// One approved rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rating<'a> {
    /// The reviewer's customer id.
    pub customer: &'a str,
    /// The good's id.
    pub good: &'a str,
    /// 1..5 stars.
    pub stars: u8,
}

/// What the ranking needs to know about a good that exists now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    /// The good's name (for ties and reasons).
    pub name: &'a str,
    /// Whether at least one unit is in stock.
    pub in_stock: bool,
}

/// Goods that exist now, by id.
pub type Catalog<'a> = BTreeMap<&'a str, Listing<'a>>;

/// One recommended good.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation<'a> {
    /// The good's id.
    pub good: &'a str,
    /// The score rounded to 6 decimals; 0 for best sellers and top rated.
    pub score: f64,
    /// Why it is recommended.
    pub reason: Reason<'a>,
}

/// Why a good is recommended; `Display` gives the API's `reason` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'a> {
    /// Its largest term is co-purchase with this good (by name).
    BoughtWith(&'a str),
    /// Its largest term is rating similarity with this good, rated high.
    LikedWith(&'a str),
    /// Its largest term is rating dissimilarity with this good, rated low.
    DislikedWith(&'a str),
    /// Its positive terms all come from goods that no longer exist.
    Similar,
    /// Filled up from the best sellers.
    BestSeller,
    /// Filled up from the top rated.
    TopRated,
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BoughtWith(name) => write!(f, "bought together with {name}"),
            Reason::LikedWith(name) => write!(f, "liked by customers who liked {name}"),
            Reason::DislikedWith(name) => write!(f, "liked by customers who disliked {name}"),
            Reason::Similar => f.write_str("similar to what you bought or rated"),
            Reason::BestSeller => f.write_str("best seller"),
            Reason::TopRated => f.write_str("top rated"),
        }
    }
}

/// Up to `limit` goods for `customer`, best first (see the module docs).
pub fn recommend<'a>(
    customer: &str,
    purchases: &[Purchase<'a>],
    ratings: &[Rating<'a>],
    catalog: &Catalog<'a>,
    limit: usize,
) -> Vec<Recommendation<'a>> {
    let facts = Facts::new(purchases, ratings);
    let bought = facts.baskets.get(customer).cloned().unwrap_or_default();
    let rated = facts.rated.get(customer).cloned().unwrap_or_default();
    // Goods that may not be listed (again).
    let mut listed: BTreeSet<&str> = bought
        .iter()
        .copied()
        .chain(rated.keys().copied())
        .collect();
    let eligible = |good: &str, listed: &BTreeSet<&str>| {
        !listed.contains(good) && catalog.get(good).is_some_and(|listing| listing.in_stock)
    };

    let mut scored: Vec<(i64, &'a str, Vec<Term<'a>>)> = facts
        .terms(&bought, &rated)
        .into_iter()
        .filter(|(good, _)| eligible(good, &listed))
        .map(|(good, terms)| {
            (
                micros(terms.iter().map(|term| term.value).sum()),
                good,
                terms,
            )
        })
        .filter(|(score, _, _)| *score > 0)
        .collect();
    scored.sort_by(|(a_score, a, _), (b_score, b, _)| {
        b_score.cmp(a_score).then_with(|| by_name(catalog, a, b))
    });
    let mut picks: Vec<Recommendation<'a>> = scored
        .into_iter()
        .take(limit)
        .map(|(score, good, terms)| Recommendation {
            good,
            score: from_micros(score),
            reason: reason(&terms, catalog),
        })
        .collect();
    listed.extend(picks.iter().map(|pick| pick.good));

    let best_sellers = facts.best_sellers(catalog, |good| eligible(good, &listed));
    let top_rated = facts.top_rated(catalog, |good| eligible(good, &listed));
    let mut sources = [
        (Reason::BestSeller, best_sellers.into_iter()),
        (Reason::TopRated, top_rated.into_iter()),
    ];
    let mut exhausted = [false, false];
    let mut turn = 0;
    while picks.len() < limit && !exhausted.iter().all(|done| *done) {
        let (reason, queue) = &mut sources[turn];
        match queue.find(|good| !listed.contains(good)) {
            Some(good) => {
                listed.insert(good);
                picks.push(Recommendation {
                    good,
                    score: 0.0,
                    reason: *reason,
                });
            }
            None => exhausted[turn] = true,
        }
        turn = 1 - turn;
    }
    picks
}

/// Where a term comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `sim_p` with a good the customer bought.
    Bought,
    /// `w · sim_r` with a good the customer rated above 3 stars.
    Liked,
    /// `w · sim_r` with a good the customer rated below 3 stars.
    Disliked,
}

/// One summand of a good's score.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Term<'a> {
    /// The customer's good `i` it comes from.
    from: &'a str,
    source: Source,
    value: f64,
}

/// The purchases and ratings, indexed both ways.
#[derive(Debug, Default)]
struct Facts<'a> {
    /// good → customers who bought it: `B(g)`.
    buyers: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// customer → goods they bought.
    baskets: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// good → units sold.
    units: BTreeMap<&'a str, i64>,
    /// good → customer → `d(c, g)`.
    ratings: BTreeMap<&'a str, BTreeMap<&'a str, i64>>,
    /// customer → good → `d(c, g)`.
    rated: BTreeMap<&'a str, BTreeMap<&'a str, i64>>,
}

impl<'a> Facts<'a> {
    fn new(purchases: &[Purchase<'a>], ratings: &[Rating<'a>]) -> Self {
        let mut facts = Facts::default();
        for purchase in purchases {
            let (customer, good) = (purchase.customer, purchase.good);
            facts.buyers.entry(good).or_default().insert(customer);
            facts.baskets.entry(customer).or_default().insert(good);
            *facts.units.entry(good).or_default() += purchase.quantity;
        }
        for rating in ratings {
            let centred = i64::from(rating.stars) - 3;
            let (customer, good) = (rating.customer, rating.good);
            facts
                .ratings
                .entry(good)
                .or_default()
                .insert(customer, centred);
            facts
                .rated
                .entry(customer)
                .or_default()
                .insert(good, centred);
        }
        facts
    }

    /// Every good reached from the customer's goods, with its terms in a
    /// fixed order (co-purchase terms by `i`, then rating terms by `i`).
    fn terms(
        &self,
        bought: &BTreeSet<&'a str>,
        rated: &BTreeMap<&'a str, i64>,
    ) -> BTreeMap<&'a str, Vec<Term<'a>>> {
        let mut terms: BTreeMap<&'a str, Vec<Term<'a>>> = BTreeMap::new();
        for &i in bought {
            let buyers_i = self.buyers.get(i).map_or(0, BTreeSet::len);
            let mut together: BTreeMap<&'a str, usize> = BTreeMap::new();
            for customer in self.buyers.get(i).into_iter().flatten() {
                for &j in self.baskets.get(customer).into_iter().flatten() {
                    *together.entry(j).or_default() += 1;
                }
            }
            for (j, shared) in together {
                let buyers_j = self.buyers.get(j).map_or(0, BTreeSet::len);
                let value = ratio(shared as f64, (buyers_i * buyers_j) as f64);
                terms.entry(j).or_default().push(Term {
                    from: i,
                    source: Source::Bought,
                    value,
                });
            }
        }
        for (&i, &own) in rated {
            if own == 0 {
                continue;
            }
            let mut dots: BTreeMap<&'a str, i64> = BTreeMap::new();
            for (customer, d_i) in self.ratings.get(i).into_iter().flatten() {
                for (&j, d_j) in self.rated.get(customer).into_iter().flatten() {
                    *dots.entry(j).or_default() += d_i * d_j;
                }
            }
            let source = if own > 0 {
                Source::Liked
            } else {
                Source::Disliked
            };
            for (j, dot) in dots {
                if dot == 0 {
                    continue;
                }
                let norms = self.norm_squared(i) * self.norm_squared(j);
                let value = own as f64 / 2.0 * ratio(dot as f64, norms as f64);
                terms.entry(j).or_default().push(Term {
                    from: i,
                    source,
                    value,
                });
            }
        }
        terms
    }

    /// `‖d(g)‖²`.
    fn norm_squared(&self, good: &str) -> i64 {
        self.ratings
            .get(good)
            .into_iter()
            .flatten()
            .map(|(_, d)| d * d)
            .sum()
    }

    /// Goods passing `keep`, most units sold first.
    fn best_sellers(&self, catalog: &Catalog<'a>, keep: impl Fn(&str) -> bool) -> Vec<&'a str> {
        let mut goods: Vec<(&'a str, i64)> = self
            .units
            .iter()
            .filter(|(good, units)| **units > 0 && keep(good))
            .map(|(good, units)| (*good, *units))
            .collect();
        goods.sort_by(|(a, a_units), (b, b_units)| {
            b_units.cmp(a_units).then_with(|| by_name(catalog, a, b))
        });
        goods.into_iter().map(|(good, _)| good).collect()
    }

    /// Goods passing `keep` with a damped mean above 3, highest first.
    fn top_rated(&self, catalog: &Catalog<'a>, keep: impl Fn(&str) -> bool) -> Vec<&'a str> {
        // (good, Σ d, n): the damped mean is 3 + Σ d / (n + 1).
        let mut goods: Vec<(&'a str, i64, i64)> = self
            .ratings
            .iter()
            .map(|(good, by)| (*good, by.values().sum::<i64>(), by.len() as i64))
            .filter(|(good, sum, _)| *sum > 0 && keep(good))
            .collect();
        goods.sort_by(|(a, a_sum, a_n), (b, b_sum, b_n)| {
            (b_sum * (a_n + 1))
                .cmp(&(a_sum * (b_n + 1)))
                .then_with(|| b_n.cmp(a_n))
                .then_with(|| by_name(catalog, a, b))
        });
        goods.into_iter().map(|(good, _, _)| good).collect()
    }
}

/// The reason for a good with these terms: the largest positive term whose
/// good is still in the catalog.
fn reason<'a>(terms: &[Term<'a>], catalog: &Catalog<'a>) -> Reason<'a> {
    terms
        .iter()
        .filter_map(|term| {
            let listing = catalog.get(term.from)?;
            let value = micros(term.value);
            (value > 0).then_some((value, term, listing.name))
        })
        .min_by(|(a_value, a, _), (b_value, b, _)| {
            b_value
                .cmp(a_value)
                .then_with(|| by_name(catalog, a.from, b.from))
        })
        .map_or(Reason::Similar, |(_, term, name)| match term.source {
            Source::Bought => Reason::BoughtWith(name),
            Source::Liked => Reason::LikedWith(name),
            Source::Disliked => Reason::DislikedWith(name),
        })
}

/// `numerator / sqrt(product)`, or 0 when `product` is 0.
fn ratio(numerator: f64, product: f64) -> f64 {
    if product > 0.0 {
        numerator / product.sqrt()
    } else {
        0.0
    }
}

/// A score in millionths, rounded half away from zero.
fn micros(value: f64) -> i64 {
    // Scores are sums of a few cosines: far inside i64 once scaled.
    (value * 1e6).round() as i64
}

/// A score in millionths back as a number: the nearest `f64` to the
/// decimal, so it prints with at most 6 decimals.
fn from_micros(value: i64) -> f64 {
    value as f64 / 1e6
}

/// Goods by name ignoring case, then by id (goods not in the catalog last).
fn by_name(catalog: &Catalog<'_>, a: &str, b: &str) -> Ordering {
    let name = |good: &str| catalog.get(good).map(|listing| listing.name.to_lowercase());
    match (name(a), name(b)) {
        (Some(a_name), Some(b_name)) => a_name.cmp(&b_name),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.cmp(b))
}

#[cfg(test)]
// Expected scores are the 6-decimal roundings the API returns, such as
// 0.707107 for 1/√2, not approximations of a constant.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::approx_constant)]
mod tests {
    use super::*;

    /// Goods whose id is their lower-case name, all in stock unless listed
    /// in `sold_out`.
    fn catalog<'a>(names: &[&'a str], sold_out: &[&'a str]) -> Catalog<'a> {
        names
            .iter()
            .map(|name| {
                (
                    *name,
                    Listing {
                        name,
                        in_stock: !sold_out.contains(name),
                    },
                )
            })
            .collect()
    }

    fn bought<'a>(customer: &'a str, good: &'a str, quantity: i64) -> Purchase<'a> {
        Purchase {
            customer,
            good,
            quantity,
        }
    }

    fn rated<'a>(customer: &'a str, good: &'a str, stars: u8) -> Rating<'a> {
        Rating {
            customer,
            good,
            stars,
        }
    }

    /// `(good, score, reason)` of each pick.
    fn ranking(picks: &[Recommendation<'_>]) -> Vec<(String, f64, String)> {
        picks
            .iter()
            .map(|p| (p.good.to_owned(), p.score, p.reason.to_string()))
            .collect()
    }

    fn row(good: &str, score: f64, reason: &str) -> (String, f64, String) {
        (good.to_owned(), score, reason.to_owned())
    }

    /// The scenario of the black-box test (tests/api/extensions.rs).
    ///
    /// Purchases (quantity 1 unless said): ann Apple, Bread; bob Apple,
    /// Cheese, Dates, Ice; cat Apple, Bread, Cheese, Ice; dan Bread, Eggs;
    /// eve Honey ×2. Ice is sold out. Ratings: ann Apple 5; bob Apple 4,
    /// Cheese 5, Dates 1; cat Apple 5, Cheese 4; dan Figs 5.
    ///
    /// Buyers: Apple {ann, bob, cat}, Bread {ann, cat, dan}, Cheese {bob,
    /// cat}, Dates {bob}, Eggs {dan}, Honey {eve}, Ice {bob, cat}.
    /// Centred ratings: Apple (ann 2, bob 1, cat 2) so ‖Apple‖ = 3; Cheese
    /// (bob 2, cat 1) so ‖Cheese‖ = √5; Dates (bob -2), ‖Dates‖ = 2; Figs
    /// (dan 2).
    fn shop() -> (
        Vec<Purchase<'static>>,
        Vec<Rating<'static>>,
        Catalog<'static>,
    ) {
        let purchases = vec![
            bought("ann", "apple", 1),
            bought("ann", "bread", 1),
            bought("bob", "apple", 1),
            bought("bob", "cheese", 1),
            bought("bob", "dates", 1),
            bought("bob", "ice", 1),
            bought("cat", "apple", 1),
            bought("cat", "bread", 1),
            bought("cat", "cheese", 1),
            bought("cat", "ice", 1),
            bought("dan", "bread", 1),
            bought("dan", "eggs", 1),
            bought("eve", "honey", 2),
        ];
        let ratings = vec![
            rated("ann", "apple", 5),
            rated("bob", "apple", 4),
            rated("bob", "cheese", 5),
            rated("bob", "dates", 1),
            rated("cat", "apple", 5),
            rated("cat", "cheese", 4),
            rated("dan", "figs", 5),
        ];
        let names = [
            "apple", "bread", "cheese", "dates", "eggs", "figs", "honey", "ice",
        ];
        (purchases, ratings, catalog(&names, &["ice"]))
    }

    #[test]
    fn the_worked_example_ranks_by_hand_computed_scores() {
        // ann bought Apple and Bread and rated Apple 5 (w = 1).
        // Cheese: sim_p(Apple) 2/√6 + sim_p(Bread) 1/√6 + 1·sim_r(Apple)
        //   (1·2 + 2·1)/(3·√5) = 1.224745 + 0.596285 = 1.821030.
        // Eggs: sim_p(Bread) 1/√3 = 0.577350.
        // Dates: sim_p(Apple) 1/√3 + 1·sim_r(Apple) (1·-2)/(3·2)
        //   = 0.577350 - 0.333333 = 0.244017.
        // Ice would score 1.224745 but is sold out. Then the fill-up: best
        // sellers (units) Apple 3, Bread 3, Cheese 2, Honey 2, Ice 2, ...
        // give Honey; top rated (Σd / (n+1)) Apple 5/4, Cheese 3/3, Figs
        // 2/2 give Figs.
        let (purchases, ratings, catalog) = shop();
        let picks = recommend("ann", &purchases, &ratings, &catalog, 5);
        assert_eq!(
            ranking(&picks),
            vec![
                row("cheese", 1.82103, "bought together with apple"),
                row("eggs", 0.57735, "bought together with bread"),
                row("dates", 0.244017, "bought together with apple"),
                row("honey", 0.0, "best seller"),
                row("figs", 0.0, "top rated"),
            ]
        );
    }

    #[test]
    fn the_limit_cuts_the_ranking() {
        let (purchases, ratings, catalog) = shop();
        let picks = recommend("ann", &purchases, &ratings, &catalog, 2);
        let goods: Vec<&str> = picks.iter().map(|p| p.good).collect();
        assert_eq!(goods, vec!["cheese", "eggs"]);
    }

    #[test]
    fn a_customer_without_history_gets_best_sellers_and_top_rated_in_turn() {
        // Best sellers: Apple, Bread (3 units, by name), Cheese, Honey (2),
        // Dates, Eggs (1). Top rated: Apple (3 + 5/4), Cheese and Figs
        // (3 + 1; Cheese has more ratings). Apple is taken as a best seller,
        // so the top rated turn takes Cheese, and Cheese is then skipped.
        let (purchases, ratings, catalog) = shop();
        let picks = recommend("zed", &purchases, &ratings, &catalog, 7);
        assert_eq!(
            ranking(&picks),
            vec![
                row("apple", 0.0, "best seller"),
                row("cheese", 0.0, "top rated"),
                row("bread", 0.0, "best seller"),
                row("figs", 0.0, "top rated"),
                row("honey", 0.0, "best seller"),
                row("dates", 0.0, "best seller"),
                row("eggs", 0.0, "best seller"),
            ]
        );
    }

    #[test]
    fn an_empty_shop_recommends_nothing() {
        assert!(recommend("ann", &[], &[], &Catalog::new(), 5).is_empty());
    }

    #[test]
    fn equal_scores_are_ordered_by_name_ignoring_case_then_id() {
        // ann and bob bought X; bob also bought goods named "b", "C" and
        // "A". Each scores sim_p(X, g) = 1/√(2·1) = 0.707107.
        let purchases = [
            bought("ann", "x", 1),
            bought("bob", "x", 1),
            bought("bob", "id-2", 1),
            bought("bob", "id-1", 1),
            bought("bob", "id-3", 1),
        ];
        let mut catalog = Catalog::new();
        catalog.insert(
            "x",
            Listing {
                name: "X",
                in_stock: true,
            },
        );
        catalog.insert(
            "id-2",
            Listing {
                name: "b",
                in_stock: true,
            },
        );
        catalog.insert(
            "id-1",
            Listing {
                name: "C",
                in_stock: true,
            },
        );
        catalog.insert(
            "id-3",
            Listing {
                name: "A",
                in_stock: true,
            },
        );
        let picks = recommend("ann", &purchases, &[], &catalog, 5);
        assert_eq!(
            ranking(&picks),
            vec![
                row("id-3", 0.707107, "bought together with X"),
                row("id-2", 0.707107, "bought together with X"),
                row("id-1", 0.707107, "bought together with X"),
            ]
        );
    }

    #[test]
    fn goods_bought_rated_sold_out_or_deleted_are_never_recommended() {
        // Everything bob bought co-occurs with ann's "x".
        let purchases = [
            bought("ann", "x", 1),
            bought("bob", "x", 1),
            bought("bob", "rated", 1),
            bought("bob", "sold-out", 1),
            bought("bob", "deleted", 1),
            bought("bob", "fine", 1),
        ];
        let ratings = [rated("ann", "rated", 3)];
        let catalog = catalog(&["x", "rated", "sold-out", "fine"], &["sold-out"]);
        let picks = recommend("ann", &purchases, &ratings, &catalog, 10);
        let goods: Vec<&str> = picks.iter().map(|p| p.good).collect();
        assert_eq!(goods, vec!["fine"]);
    }

    #[test]
    fn ratings_alone_make_a_profile_and_say_so_in_the_reason() {
        // ann rated P 5 (w = 1) and N 1 (w = -1) but bought nothing.
        // bob: P 5, Q 5, N 1, R 5. cat: P 4, S 1.
        // d: P (ann 2, bob 2, cat 1) ‖P‖ = 3; N (ann -2, bob -2) ‖N‖ = 2√2;
        //    Q (bob 2) ‖Q‖ = 2; R (bob 2) 2; S (cat -2) 2.
        // Q: 1·(2·2)/(3·2) + -1·(-2·2)/(2√2·2) = 0.666667 + 0.707107
        //    = 1.373773 (largest term: the one from N, "disliked").
        // R: the same as Q, so by name: "q" < "r".
        // S: 1·(1·-2)/(3·2) = -0.333333: not recommended.
        let ratings = [
            rated("ann", "p", 5),
            rated("ann", "n", 1),
            rated("bob", "p", 5),
            rated("bob", "q", 5),
            rated("bob", "n", 1),
            rated("bob", "r", 5),
            rated("cat", "p", 4),
            rated("cat", "s", 1),
        ];
        let catalog = catalog(&["p", "n", "q", "r", "s"], &[]);
        let picks = recommend("ann", &[], &ratings, &catalog, 2);
        assert_eq!(
            ranking(&picks),
            vec![
                row("q", 1.373773, "liked by customers who disliked n"),
                row("r", 1.373773, "liked by customers who disliked n"),
            ]
        );
        // With room to spare, S is not filled in either: its Σd is negative.
        let goods: Vec<&str> = recommend("ann", &[], &ratings, &catalog, 5)
            .iter()
            .map(|p| p.good)
            .collect();
        assert_eq!(goods, vec!["q", "r"]);
    }

    #[test]
    fn a_liked_good_is_named_when_its_term_is_largest() {
        // ann rated P 5; bob rated P 5 and Q 4. Q: 1·(2·1)/(2√2·1) = 0.707107.
        let ratings = [
            rated("ann", "p", 5),
            rated("bob", "p", 5),
            rated("bob", "q", 4),
        ];
        let catalog = catalog(&["p", "q"], &[]);
        let picks = recommend("ann", &[], &ratings, &catalog, 1);
        assert_eq!(
            ranking(&picks),
            vec![row("q", 0.707107, "liked by customers who liked p")]
        );
    }

    #[test]
    fn three_star_ratings_are_neutral() {
        let ratings = [
            rated("ann", "p", 3),
            rated("bob", "p", 3),
            rated("bob", "q", 5),
        ];
        let catalog = catalog(&["p", "q"], &[]);
        let picks = recommend("ann", &[], &ratings, &catalog, 5);
        // Q is not similar to P (P's norm is 0), but Q is top rated.
        assert_eq!(ranking(&picks), vec![row("q", 0.0, "top rated")]);
    }

    #[test]
    fn a_deleted_source_good_gives_the_generic_reason() {
        let purchases = [
            bought("ann", "gone", 1),
            bought("bob", "gone", 1),
            bought("bob", "q", 1),
        ];
        let catalog = catalog(&["q"], &[]);
        let picks = recommend("ann", &purchases, &[], &catalog, 1);
        assert_eq!(
            ranking(&picks),
            vec![row("q", 0.707107, "similar to what you bought or rated")]
        );
    }

    #[test]
    fn best_sellers_are_ranked_by_units_sold_not_by_sales() {
        // bob bought Q ×50 once; cat and dan bought R once each; cat S once.
        let purchases = [
            bought("bob", "q", 50),
            bought("cat", "r", 1),
            bought("dan", "r", 1),
            bought("cat", "s", 1),
        ];
        let catalog = catalog(&["q", "r", "s"], &[]);
        let goods: Vec<&str> = recommend("zed", &purchases, &[], &catalog, 5)
            .iter()
            .map(|p| p.good)
            .collect();
        assert_eq!(goods, vec!["q", "r", "s"]);
    }

    #[test]
    fn a_repeated_purchase_counts_once_in_the_matrix() {
        // ann bought X; bob bought X three times and Q once: sim_p = 1/√2.
        let purchases = [
            bought("ann", "x", 1),
            bought("bob", "x", 1),
            bought("bob", "x", 1),
            bought("bob", "x", 1),
            bought("bob", "q", 1),
        ];
        let catalog = catalog(&["x", "q"], &[]);
        let picks = recommend("ann", &purchases, &[], &catalog, 1);
        assert_eq!(picks[0].score, 0.707107);
    }

    #[test]
    fn the_ranking_does_not_depend_on_the_order_of_the_facts() {
        let (mut purchases, mut ratings, catalog) = shop();
        let expected = recommend("ann", &purchases, &ratings, &catalog, 8);
        purchases.reverse();
        ratings.reverse();
        assert_eq!(
            recommend("ann", &purchases, &ratings, &catalog, 8),
            expected
        );
        purchases.rotate_left(5);
        ratings.rotate_left(3);
        assert_eq!(
            recommend("ann", &purchases, &ratings, &catalog, 8),
            expected
        );
    }

    #[test]
    fn damped_means_are_compared_exactly() {
        // P: one 5 → 3 + 2/2 = 4. Q: 5, 5, 4 → 3 + 5/4 = 4.25. R: 4, 4, 4
        // → 3 + 3/4 = 3.75. S: 5, 1 → Σd = 0: not top rated.
        let ratings = [
            rated("a", "p", 5),
            rated("a", "q", 5),
            rated("b", "q", 5),
            rated("c", "q", 4),
            rated("a", "r", 4),
            rated("b", "r", 4),
            rated("c", "r", 4),
            rated("a", "s", 5),
            rated("b", "s", 1),
        ];
        let catalog = catalog(&["p", "q", "r", "s"], &[]);
        let goods: Vec<&str> = recommend("zed", &[], &ratings, &catalog, 5)
            .iter()
            .map(|p| p.good)
            .collect();
        assert_eq!(goods, vec!["q", "p", "r"]);
    }
}
