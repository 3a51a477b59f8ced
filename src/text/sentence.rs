//! Lower-case messages (refusals, errors) as sentences on a screen:
//! capitalised, with a final period.

/// "wrong code" -> "Wrong code."; text that already ends a sentence keeps
/// its ending.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let text: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if text.ends_with(['.', '!', '?']) {
        text
    } else {
        format!("{text}.")
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn sentences() {
        assert_eq!(sentence("wrong code"), "Wrong code.");
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(sentence("élan"), "Élan.");
        assert_eq!(sentence(""), "");
    }
}
