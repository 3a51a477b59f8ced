//! E-mail addresses as account names: one normal form, so that the same
//! mailbox is always the same account (the masked form for screens and logs
//! is `text::address::mask`).

use super::Refusal;

/// RFC 5321's limit on a whole address.
const MAX_LEN: usize = 254;
/// RFC 5321's limit on the part before the `@`.
const MAX_LOCAL_LEN: usize = 64;

/// Trims and lowercases `input` and checks it is a plain `name@domain.tld`
/// address: dot-atom local part, dotted domain of letters, digits and
/// hyphens. Quoted local parts and address literals are refused: nobody
/// needs them to log in, and they complicate every place an address goes.
pub fn parse(input: &str) -> Result<String, Refusal> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Refusal::new("enter your e-mail address"));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Refusal::new(
            "an e-mail address has no spaces or control characters",
        ));
    }
    let email = input.to_lowercase();
    if email.len() > MAX_LEN {
        return Err(Refusal::new(format!(
            "that e-mail address is too long (at most {MAX_LEN} characters)"
        )));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(Refusal::new(
            "an e-mail address has an @, like alice@example.com",
        ));
    };
    if domain.contains('@') {
        return Err(Refusal::new("an e-mail address has only one @"));
    }
    if local.is_empty() || local.len() > MAX_LOCAL_LEN || !dot_atom(local) {
        return Err(Refusal::new(
            "the part before the @ is not a valid mailbox name",
        ));
    }
    if !domain_ok(domain) {
        return Err(Refusal::new(
            "the part after the @ must be a domain like example.com",
        ));
    }
    // Whatever passes here must also be deliverable through lettre.
    if email.parse::<lettre::Address>().is_err() {
        return Err(Refusal::new("that is not a valid e-mail address"));
    }
    Ok(email)
}

/// Atoms of RFC 5322 `atext` separated by single dots.
fn dot_atom(s: &str) -> bool {
    s.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
    })
}

/// At least two labels; each 1-63 characters of letters, digits and inner
/// hyphens; the top-level label not all digits.
fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_good_addresses() {
        assert_eq!(parse("  Alice@Example.COM ").unwrap(), "alice@example.com");
        assert_eq!(
            parse("a.b+tag@mail.example.co.uk").unwrap(),
            "a.b+tag@mail.example.co.uk"
        );
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a@b@example.com",
            "al ice@example.com",
            "alice@exa mple.com",
            "alice\u{7}@example.com",
            "alice@example..com",
            "alice.@example.com",
            ".alice@example.com",
            "a..b@example.com",
            "alice@-example.com",
            "alice@1.2.3.4",
            "\"alice\"@example.com",
            "alice:x@example.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(parse(&long).is_err());
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(parse(&long_local).is_err());
    }
}
