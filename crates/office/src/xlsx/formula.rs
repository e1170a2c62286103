//! A formula's text, normalised for comparison: what the user wrote against what IronCalc read. IronCalc's
//! parser forgives some mistakes silently (it closes a missing parenthesis, and stops at the first complete
//! expression, so `=A1 A2` evaluates as `=A1`); comparing the two catches those before a workbook is written
//! whose numbers come from a formula other than the one it shows.

/// `formula` without its `=`, spaces, case, quotes around sheet names, `_xlfn.` prefixes and number spellings
/// (`1.50` and `1.5` are the same), leaving string literals as they are.
pub(crate) fn normalized(formula: &str) -> String {
    let text = formula.trim();
    let text = text.strip_prefix('=').unwrap_or(text);
    let characters: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        match character {
            '"' => {
                // A string literal, `""` inside it being one quote.
                out.push('"');
                index += 1;
                while index < characters.len() {
                    out.push(characters[index]);
                    if characters[index] == '"' {
                        if characters.get(index + 1) == Some(&'"') {
                            out.push('"');
                            index += 2;
                            continue;
                        }
                        index += 1;
                        break;
                    }
                    index += 1;
                }
            }
            '\'' => {
                // A quoted sheet name: kept without its quotes, upper-cased.
                index += 1;
                while index < characters.len() {
                    if characters[index] == '\'' {
                        if characters.get(index + 1) == Some(&'\'') {
                            out.push('\'');
                            index += 2;
                            continue;
                        }
                        index += 1;
                        break;
                    }
                    out.extend(characters[index].to_uppercase());
                    index += 1;
                }
            }
            '[' => {
                // A structured reference, brackets nested.
                let mut depth = 0usize;
                while index < characters.len() {
                    let inner = characters[index];
                    out.extend(inner.to_uppercase());
                    index += 1;
                    match inner {
                        '[' => depth += 1,
                        ']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            character if character.is_whitespace() => index += 1,
            character if character.is_alphabetic() || matches!(character, '_' | '$' | '\\') => {
                let start = index;
                while index < characters.len()
                    && (characters[index].is_alphanumeric() || matches!(characters[index], '_' | '$' | '\\' | '.'))
                {
                    index += 1;
                }
                let word: String = characters[start..index].iter().collect::<String>().to_uppercase();
                let word = word.strip_prefix("_XLFN.").unwrap_or(&word);
                let word = word.strip_prefix("_XLWS.").unwrap_or(word);
                out.push_str(word);
            }
            character
                if character.is_ascii_digit()
                    || (character == '.' && characters.get(index + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = index;
                while index < characters.len() && (characters[index].is_ascii_digit() || characters[index] == '.') {
                    index += 1;
                }
                if index < characters.len() && matches!(characters[index], 'e' | 'E') {
                    let mut end = index + 1;
                    if end < characters.len() && matches!(characters[end], '+' | '-') {
                        end += 1;
                    }
                    if end < characters.len() && characters[end].is_ascii_digit() {
                        while end < characters.len() && characters[end].is_ascii_digit() {
                            end += 1;
                        }
                        index = end;
                    }
                }
                let number: String = characters[start..index].iter().collect();
                match number.parse::<f64>() {
                    Ok(value) => out.push_str(&value.to_string()),
                    Err(_) => out.push_str(&number),
                }
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    out
}

/// Whether a formula refers to a table by name: a `[` outside string literals and quoted sheet names.
pub(crate) fn has_table_reference(formula: &str) -> bool {
    let mut quote: Option<char> = None;
    for character in formula.chars() {
        match (quote, character) {
            (None, '"' | '\'') => quote = Some(character),
            (Some(open), _) if character == open => quote = None,
            (None, '[') => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_differences_vanish() {
        assert_eq!(normalized("=sum( A1:a3 )"), normalized("=SUM(A1:A3)"));
        assert_eq!(normalized("='Data'!B2*1.50"), normalized("=Data!B2*1.5"));
        assert_eq!(normalized("=_xlfn.XLOOKUP(1,A:A,B:B)"), normalized("=XLOOKUP(1,A:A,B:B)"));
        assert_eq!(normalized("=1E3"), normalized("=1000"));
        assert_eq!(normalized("='My Sheet'!A1"), "MY SHEET!A1");
    }

    #[test]
    fn table_references_are_found_outside_strings() {
        assert!(has_table_reference("=SUM(Sales[Revenue])"));
        assert!(!has_table_reference("=\"[x]\"&'a[b'!A1"));
    }

    #[test]
    fn meaning_differences_stay() {
        assert_ne!(normalized("=A1 A2"), normalized("=A1"));
        assert_ne!(normalized("=SUM(1,"), normalized("=SUM(1,)"));
        assert_ne!(normalized("=\"a b\""), normalized("=\"ab\""));
        assert_ne!(normalized("=\"abc\""), normalized("=\"ABC\""));
    }
}
