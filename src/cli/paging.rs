//! How many rows a listing prints: the newest 50 unless told otherwise, every
//! row in JSON (scripts rely on that) unless `--limit` is given.

use clap::Args;

/// Rows a listing prints when neither `--limit` nor `--all` is given.
pub const DEFAULT_ROWS: u32 = 50;

/// `--limit N` and `--all`, shared by the listings.
#[derive(Debug, Clone, Copy, Args)]
pub struct Paging {
    /// Print at most N rows, the newest [default: 50; with --json every row].
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Print every row.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
}

impl Paging {
    /// How many rows to print: `None` is every row.
    pub fn rows(self, json: bool) -> Option<u32> {
        rows(self.limit, self.all || json)
    }
}

/// At most `limit` rows when given, else every row when `every` is set, else
/// [`DEFAULT_ROWS`].
pub fn rows(limit: Option<u32>, every: bool) -> Option<u32> {
    match (limit, every) {
        (Some(n), _) => Some(n),
        (None, true) => None,
        (None, false) => Some(DEFAULT_ROWS),
    }
}

/// What to fetch for `rows`: one more than printed, to know whether there are more.
pub fn fetch(rows: Option<u32>) -> Option<i64> {
    rows.map(|n| i64::from(n) + 1)
}

/// Cuts `list` to `rows` and, when rows were left out, says so on standard
/// error (standard output stays the listing alone).
pub fn cut<T>(list: &mut Vec<T>, rows: Option<u32>) {
    let Some(n) = rows else { return };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if list.len() > n {
        list.truncate(n);
        eprintln!("ticketd: showing the newest {n}; --limit N or --all shows more");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_by_default_every_row_in_json_unless_limited() {
        assert_eq!(rows(None, false), Some(50));
        assert_eq!(rows(None, true), None);
        assert_eq!(rows(Some(5), true), Some(5));
        assert_eq!(rows(Some(5), false), Some(5));
        assert_eq!(fetch(Some(50)), Some(51));
        assert_eq!(fetch(None), None);
    }

    #[test]
    fn a_cut_keeps_the_first_rows() {
        let mut list = vec![5, 4, 3, 2, 1];
        cut(&mut list, Some(3));
        assert_eq!(list, [5, 4, 3]);
        cut(&mut list, None);
        assert_eq!(list, [5, 4, 3]);
    }
}
