//! How a table pane is being looked at: the selected row, a `/` filter (typed in place),
//! the sort column and direction, and whether the selected row's detail popup is open.
//! Rows are derived from state on every frame; the selection indexes the filtered,
//! sorted rows.

/// A table pane's view state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableView {
    pub selected: usize,
    /// First row shown (kept so the selection stays visible).
    pub offset: usize,
    pub filter: String,
    /// The filter is being typed: keys go to it, not to actions.
    pub editing_filter: bool,
    /// Index into the pane's sort columns.
    pub sort: usize,
    pub descending: bool,
    pub detail_open: bool,
}

/// What a key typed into the filter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKey<'a> {
    Text(&'a str),
    Backspace,
    /// Keep the filter and stop typing.
    Accept,
    /// Drop the filter and stop typing.
    Cancel,
    Ignore,
}

impl FilterKey<'_> {
    /// The keymap's key name (`"a"`, `"space"`, `"backspace"`, `"enter"`, `"esc"`).
    pub fn from_key(name: &str) -> FilterKey<'_> {
        match name {
            "enter" => FilterKey::Accept,
            "esc" => FilterKey::Cancel,
            "backspace" => FilterKey::Backspace,
            "space" => FilterKey::Text(" "),
            n if n.chars().count() == 1 => FilterKey::Text(n),
            _ => FilterKey::Ignore,
        }
    }
}

impl TableView {
    /// Does `haystack` (a row's searchable text) match the filter? Case-insensitive,
    /// every space-separated word must appear.
    pub fn matches(&self, haystack: &str) -> bool {
        let hay = haystack.to_lowercase();
        self.filter
            .to_lowercase()
            .split_whitespace()
            .all(|word| hay.contains(word))
    }

    pub fn start_filter(&mut self) {
        self.editing_filter = true;
        self.detail_open = false;
    }

    pub fn type_filter(&mut self, key: FilterKey) {
        match key {
            FilterKey::Text(t) => self.filter.push_str(t),
            FilterKey::Backspace => {
                self.filter.pop();
            }
            FilterKey::Accept => self.editing_filter = false,
            FilterKey::Cancel => {
                self.filter.clear();
                self.editing_filter = false;
            }
            FilterKey::Ignore => {}
        }
        self.selected = 0;
        self.offset = 0;
    }

    /// Next sort column (of `columns`); past the last one, the direction flips.
    pub fn next_sort(&mut self, columns: usize) {
        if columns == 0 {
            return;
        }
        if self.sort + 1 >= columns {
            self.sort = 0;
            self.descending = !self.descending;
        } else {
            self.sort += 1;
        }
    }

    /// Moves the selection by `delta` rows within `rows`.
    pub fn move_by(&mut self, delta: isize, rows: usize) {
        let last = rows.saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    pub fn clamp(&mut self, rows: usize) {
        self.selected = self.selected.min(rows.saturating_sub(1));
        if rows == 0 {
            self.detail_open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_typing_sorting_and_moving() {
        let mut v = TableView::default();
        v.start_filter();
        for k in ["g", "p", "u", "space", "1", "backspace", "a", "enter"] {
            v.type_filter(FilterKey::from_key(k));
        }
        assert_eq!(v.filter, "gpu a");
        assert!(!v.editing_filter);
        assert!(v.matches("gpu-eu-west-1a-0 eu-west-1a"));
        assert!(!v.matches("worker-b"));
        v.type_filter(FilterKey::Cancel);
        assert!(v.filter.is_empty() && v.matches("anything"));

        v.next_sort(2);
        assert_eq!((v.sort, v.descending), (1, false));
        v.next_sort(2);
        assert_eq!((v.sort, v.descending), (0, true));

        v.move_by(5, 3);
        assert_eq!(v.selected, 2);
        v.move_by(-10, 3);
        assert_eq!(v.selected, 0);
    }
}
