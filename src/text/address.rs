//! An address as screens and logs show it: masked, so a log or a shoulder
//! glance does not give away whose account it is.

/// "alice@example.com" -> "a***e@example.com"; local parts of one or two
/// characters keep only the first: "a***@example.com".
pub fn mask(email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let mut chars = local.chars();
    let first = chars.next().map(String::from).unwrap_or_default();
    let last = match local.chars().count() {
        0..=2 => String::new(),
        _ => local.chars().last().map(String::from).unwrap_or_default(),
    };
    format!("{first}***{last}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks() {
        assert_eq!(mask("alice@example.com"), "a***e@example.com");
        assert_eq!(mask("al@example.com"), "a***@example.com");
        assert_eq!(mask("a@example.com"), "a***@example.com");
        assert_eq!(mask("bob@x.io"), "b***b@x.io");
    }
}
