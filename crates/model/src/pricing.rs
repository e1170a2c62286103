//! What tokens cost, for the known hosted models. Local models have no price, and neither has a hosted
//! model's name served from anywhere but its provider's own API: [`Prices`] decides which prices apply.

use std::collections::HashMap;

use crate::{ProviderKind, Usage};

/// USD per million tokens of each kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Input tokens at the normal rate.
    pub input: f64,
    /// Output tokens, thinking included.
    pub output: f64,
    /// Input tokens read from the prompt cache.
    pub cache_read: f64,
    /// Input tokens written to the prompt cache.
    pub cache_write: f64,
}

impl Price {
    /// What `usage` cost, in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_million = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per_million(usage.input_tokens, self.input)
            + per_million(usage.output_tokens, self.output)
            + per_million(usage.cache_read_tokens, self.cache_read)
            + per_million(usage.cache_write_tokens, self.cache_write)
    }
}

/// A list price as errand's table holds it: the price, the day it was last checked against its source, and
/// that source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListedPrice {
    /// USD per million tokens of each kind.
    pub price: Price,
    /// The day the price was last checked against `source`, `YYYY-MM-DD`.
    pub as_of: &'static str,
    /// Where it was checked: the provider's pricing page.
    pub source: &'static str,
}

/// How old the table may grow before `errand doctor` warns that its prices may be out of date, in days.
pub const STALE_AFTER_DAYS: i64 = 180;

/// Anthropic's pricing page.
const ANTHROPIC_PRICING: &str = "https://docs.anthropic.com/en/docs/about-claude/pricing";

/// OpenAI's pricing page.
const OPENAI_PRICING: &str = "https://platform.openai.com/docs/pricing";

/// When the prices below were checked: during February 2026 (the day was not recorded; the first of the
/// month is the earliest it can have been, so the table's age is never understated).
const FEBRUARY_2026: &str = "2026-02-01";

/// Anthropic prices: a cache write costs 1.25× input (5-minute cache), a cache read 0.1×.
const fn anthropic(input: f64, output: f64) -> ListedPrice {
    ListedPrice {
        price: Price { input, output, cache_read: input / 10.0, cache_write: input * 1.25 },
        as_of: FEBRUARY_2026,
        source: ANTHROPIC_PRICING,
    }
}

/// OpenAI prices: cached input has its own rate; there is no charge for writing the cache.
const fn openai(input: f64, cached: f64, output: f64) -> ListedPrice {
    ListedPrice {
        price: Price { input, output, cache_read: cached, cache_write: input },
        as_of: FEBRUARY_2026,
        source: OPENAI_PRICING,
    }
}

/// List prices in USD per million tokens, by model id prefix, as published by Anthropic and OpenAI (standard
/// tier, prompts under 200k tokens), each with the day it was checked and where. Ids are compared with `.` read
/// as `-`, so `claude-3.7-sonnet` matches `claude-3-7-sonnet`. When a price changes, change its entry and its
/// `as_of`; `errand doctor` warns once the oldest entry is more than [`STALE_AFTER_DAYS`] old.
const TABLE: &[(&str, ListedPrice)] = &[
    ("claude-opus-4-6", anthropic(5.0, 25.0)),
    ("claude-opus-4-5", anthropic(5.0, 25.0)),
    ("claude-opus-4-1", anthropic(15.0, 75.0)),
    ("claude-opus-4", anthropic(15.0, 75.0)),
    ("claude-sonnet-4", anthropic(3.0, 15.0)),
    ("claude-haiku-4-5", anthropic(1.0, 5.0)),
    ("claude-3-7-sonnet", anthropic(3.0, 15.0)),
    ("claude-3-5-sonnet", anthropic(3.0, 15.0)),
    ("claude-3-5-haiku", anthropic(0.8, 4.0)),
    ("gpt-4o", openai(2.5, 1.25, 10.0)),
    ("gpt-4o-mini", openai(0.15, 0.075, 0.6)),
    ("gpt-4.1", openai(2.0, 0.5, 8.0)),
    ("gpt-4.1-mini", openai(0.4, 0.1, 1.6)),
    ("gpt-4.1-nano", openai(0.1, 0.025, 0.4)),
    ("o3", openai(2.0, 0.5, 8.0)),
    ("o3-mini", openai(1.1, 0.55, 4.4)),
    ("o3-pro", openai(20.0, 20.0, 80.0)),
    ("o4-mini", openai(1.1, 0.275, 4.4)),
    ("gpt-5", openai(1.25, 0.125, 10.0)),
    ("gpt-5-mini", openai(0.25, 0.025, 2.0)),
    ("gpt-5-nano", openai(0.05, 0.005, 0.4)),
];

/// The price of `model`, matched by the longest known prefix that ends at a word boundary; provider
/// prefixes such as OpenRouter's `anthropic/` are ignored. `None` for unknown (usually local) models.
pub fn price(model: &str) -> Option<Price> {
    listed(model).map(|listed| listed.price)
}

/// The table's entry for `model`, with the day its price was checked and where, matched as [`price`] does.
pub fn listed(model: &str) -> Option<ListedPrice> {
    by_model_prefix(TABLE, model)
}

/// Every entry of the list-price table: the model id prefix and its price.
pub fn table() -> impl Iterator<Item = (&'static str, ListedPrice)> {
    TABLE.iter().copied()
}

/// The day the table's oldest price was checked, `YYYY-MM-DD`: how old the table is.
pub fn table_as_of() -> &'static str {
    TABLE.iter().map(|(_, listed)| listed.as_of).min().unwrap_or(FEBRUARY_2026)
}

/// What front ends say of a model errand knows no price for: its tokens are counted, its cost is not.
pub fn no_price_note(model: &str) -> String {
    format!("no price known for {model} (add [prices.\"{model}\"] to config.toml)")
}

/// The entry of `table` for `model`: the longest prefix that ends at a word boundary, provider prefixes such
/// as OpenRouter's `anthropic/` ignored and `.` read as `-`. Shared by the price and context-window tables.
pub(crate) fn by_model_prefix<T: Copy>(table: &[(&str, T)], model: &str) -> Option<T> {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase().replace('.', "-");
    table
        .iter()
        .filter(|(prefix, _)| {
            let prefix = prefix.replace('.', "-");
            // "o3" must not match "o30b", nor "gpt-4o" match "gpt-4omega".
            name.strip_prefix(&prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', ':', '@']))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, value)| *value)
}

/// The prices that apply to one provider connection: the list prices only when the base URL is the
/// provider's own API (a local server that serves a model under a Claude or GPT name costs nothing anyone
/// publishes), plus any the person configured, which win.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    /// Whether the published list prices apply.
    pub list_prices: bool,
    /// Prices the person gave, by exact model name.
    pub configured: HashMap<String, Price>,
}

impl Default for Prices {
    /// The list prices and nothing configured, for callers that do not know where requests go.
    fn default() -> Self {
        Self { list_prices: true, configured: HashMap::new() }
    }
}

impl Prices {
    /// The prices for requests to `base_url` with `kind`'s wire protocol, with the person's own on top.
    pub fn for_endpoint(kind: ProviderKind, base_url: &str, configured: HashMap<String, Price>) -> Self {
        Self { list_prices: is_providers_own_api(kind, base_url), configured }
    }

    /// The price of `model` here, if known.
    pub fn price(&self, model: &str) -> Option<Price> {
        self.configured.get(model).copied().or_else(|| if self.list_prices { price(model) } else { None })
    }
}

/// Whether `base_url` is the provider's own API (`https://api.anthropic.com`, `https://api.openai.com`),
/// whose list prices are the ones [`price`] knows.
pub fn is_providers_own_api(kind: ProviderKind, base_url: &str) -> bool {
    let host = match kind {
        ProviderKind::Anthropic => "https://api.anthropic.com",
        ProviderKind::Openai => "https://api.openai.com",
    };
    let url = base_url.trim_end_matches('/').to_ascii_lowercase();
    url.strip_prefix(host).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_prices_apply_only_at_the_providers_own_api() {
        let own = Prices::for_endpoint(ProviderKind::Anthropic, "https://api.anthropic.com/", HashMap::new());
        assert_eq!(own.price("claude-sonnet-4-5").map(|p| p.input), Some(3.0));
        let openai = Prices::for_endpoint(ProviderKind::Openai, "https://api.openai.com/v1", HashMap::new());
        assert_eq!(openai.price("gpt-4o").map(|p| p.input), Some(2.5));
        for (kind, url) in [
            (ProviderKind::Anthropic, "http://127.0.0.1:8080"),
            (ProviderKind::Anthropic, "https://api.anthropic.com.example.net"),
            (ProviderKind::Openai, "http://localhost:11434/v1"),
            (ProviderKind::Openai, "https://openrouter.ai/api/v1"),
        ] {
            let local = Prices::for_endpoint(kind, url, HashMap::new());
            assert_eq!(local.price("claude-sonnet-4-5"), None, "{url}");
            assert_eq!(local.price("gpt-4o"), None, "{url}");
        }
        let mine = Price { input: 1.0, output: 2.0, cache_read: 1.0, cache_write: 1.0 };
        let configured = Prices::for_endpoint(
            ProviderKind::Openai,
            "http://localhost:8080/v1",
            HashMap::from([("qwen3".to_string(), mine)]),
        );
        assert_eq!(configured.price("qwen3"), Some(mine));
    }

    fn input_price(model: &str) -> Option<f64> {
        price(model).map(|price| price.input)
    }

    #[test]
    fn families_match_by_prefix() {
        assert_eq!(input_price("claude-sonnet-4-5-20250929"), Some(3.0));
        assert_eq!(input_price("claude-sonnet-4-20250514"), Some(3.0));
        assert_eq!(input_price("claude-opus-4-1-20250805"), Some(15.0));
        assert_eq!(input_price("claude-opus-4-5"), Some(5.0));
        assert_eq!(input_price("claude-haiku-4-5-20251001"), Some(1.0));
        assert_eq!(input_price("claude-3-7-sonnet-latest"), Some(3.0));
        assert_eq!(input_price("claude-3-5-haiku-20241022"), Some(0.8));
        assert_eq!(input_price("gpt-4o-2024-08-06"), Some(2.5));
        assert_eq!(input_price("gpt-5"), Some(1.25));
        assert_eq!(input_price("o4-mini"), Some(1.1));
    }

    #[test]
    fn the_longest_prefix_wins() {
        assert_eq!(input_price("gpt-4o-mini"), Some(0.15));
        assert_eq!(input_price("gpt-4.1-nano-2025-04-14"), Some(0.1));
        assert_eq!(input_price("gpt-4.1-mini"), Some(0.4));
        assert_eq!(input_price("gpt-4.1"), Some(2.0));
        assert_eq!(input_price("gpt-5-mini"), Some(0.25));
        assert_eq!(input_price("o3-mini"), Some(1.1));
        assert_eq!(input_price("o3"), Some(2.0));
    }

    #[test]
    fn provider_prefixed_and_dotted_ids() {
        assert_eq!(input_price("anthropic/claude-sonnet-4"), Some(3.0));
        assert_eq!(input_price("anthropic/claude-3.7-sonnet"), Some(3.0));
        assert_eq!(input_price("anthropic/claude-opus-4.1"), Some(15.0));
        assert_eq!(input_price("openai/gpt-4.1-mini"), Some(0.4));
        assert_eq!(input_price("OpenAI/GPT-4o"), Some(2.5));
    }

    #[test]
    fn local_and_unknown_models_have_no_price() {
        for model in ["llama3.2", "qwen3:8b", "gpt-oss:20b", "o30b", "gpt-4omega", "gpt-4-turbo", ""] {
            assert_eq!(price(model), None, "{model}");
        }
    }

    #[test]
    fn anthropic_cache_rates_follow_input() {
        let sonnet = price("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet, Price { input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75 });
    }

    #[test]
    fn cost_adds_every_kind_of_token() {
        let sonnet = price("claude-sonnet-4-5").unwrap();
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 400_000,
        };
        // 3.00 + 1.50 + 0.60 + 1.50
        assert!((sonnet.cost(&usage) - 6.6).abs() < 1e-9, "{}", sonnet.cost(&usage));
        assert_eq!(sonnet.cost(&Usage::default()), 0.0);
    }

    #[test]
    fn every_listed_price_says_when_it_was_checked_and_where() {
        for (prefix, listed) in table() {
            let date: Vec<&str> = listed.as_of.split('-').collect();
            let lengths: Vec<usize> = date.iter().map(|part| part.len()).collect();
            assert_eq!(lengths, [4, 2, 2], "{prefix}: {}", listed.as_of);
            assert!(date.iter().all(|part| part.chars().all(|c| c.is_ascii_digit())), "{prefix}: {}", listed.as_of);
            assert!(listed.source.starts_with("https://"), "{prefix}: {}", listed.source);
            assert!(table_as_of() <= listed.as_of);
        }
        assert_eq!(listed("claude-sonnet-4-5").map(|l| l.source), Some(ANTHROPIC_PRICING));
        assert_eq!(listed("gpt-5-mini").map(|l| l.source), Some(OPENAI_PRICING));
        assert_eq!(no_price_note("qwen3:8b"), "no price known for qwen3:8b (add [prices.\"qwen3:8b\"] to config.toml)");
    }
}
