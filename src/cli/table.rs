//! Plain-text tables as the Docker CLI prints them (Go's `tabwriter` with minimum width 10,
//! padding 3, blanks): every column but the last padded to its widest cell plus three
//! spaces, at least ten. Pure: rows in, text out.

/// The table of `header` and `rows`, each line ending in a newline.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    render_with(header, rows, 10, 3)
}

/// [`render`] with Go tabwriter's `minwidth` and `padding`.
pub fn render_with(
    header: &[&str],
    rows: &[Vec<String>],
    minwidth: usize,
    padding: usize,
) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(rows).collect();
    let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|cell| cell.chars().count() + padding)
                .max()
                .unwrap_or(0)
                .max(minwidth)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        for (c, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < line.len() {
                let pad = widths[c] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_like_tabwriter() {
        let rows = vec![
            vec!["a".to_string(), "longer value".into(), "x".into()],
            vec![
                "ab…".to_string(),
                "".into(),
                "last column not padded".into(),
            ],
        ];
        assert_eq!(
            render(&["NAME", "STATUS", "END"], &rows),
            "NAME      STATUS         END\n\
             a         longer value   x\n\
             ab…                      last column not padded\n"
        );
    }
}
