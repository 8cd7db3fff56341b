//! `deltalake` error messages made readable: one line, no debug structs, bounded.

/// The longest error message passed on from `deltalake`, in bytes.
const MAX_MESSAGE: usize = 400;

/// A `deltalake` error message a person can read: its first line only (the Delta kernel
/// appends a backtrace), Rust debug structs replaced by the file they name (or `…`), and at most
/// 400 bytes.
pub fn plain_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim_end();
    let mut out = String::with_capacity(first.len().min(MAX_MESSAGE));
    let mut rest = first;
    // `Name { field: value, ... }` blocks, outermost only.
    while let Some(open) = rest.find(" { ") {
        let name_start = rest[..open]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        if name_start == open || !rest[name_start..].starts_with(|c: char| c.is_ascii_uppercase()) {
            out.push_str(&rest[..open + 3]);
            rest = &rest[open + 3..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in rest[open + 1..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + 1 + i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let block = &rest[name_start..end];
        out.push_str(&rest[..name_start]);
        match block
            .split("filename: \"")
            .nth(1)
            .and_then(|f| f.split('"').next())
        {
            Some(file) => out.push_str(file),
            None => out.push('…'),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    if out.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::plain_message;

    #[test]
    fn kernel_backtraces_and_debug_structs_are_left_out() {
        let backtraced = "Kernel error: Json error: Truncated record whilst reading string\n    0: \
                          with_backtrace\n              at /root/.cargo/registry/src/error.rs:482";
        assert_eq!(
            plain_message(backtraced),
            "Kernel error: Json error: Truncated record whilst reading string"
        );
        let gap = r#"Generic delta kernel error: Expected contiguous commit files, but found gap: ParsedLogPath { location: FileMeta { location: Url { scheme: "file", path: "/t/_delta_log/00000000000000000004.json" }, size: 2357 }, filename: "00000000000000000004.json", version: 4 } -> ParsedLogPath { location: FileMeta { size: 1 }, filename: "00000000000000000006.json", version: 6, file_type: Commit }"#;
        assert_eq!(
            plain_message(gap),
            "Generic delta kernel error: Expected contiguous commit files, but found gap: \
             00000000000000000004.json -> 00000000000000000006.json"
        );
        assert_eq!(plain_message("a Struct { x: 1 } b"), "a … b");
        let long = "x".repeat(10_000);
        assert!(plain_message(&long).len() <= 403);
    }
}
