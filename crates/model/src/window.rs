//! How many tokens of input the known hosted models accept in one request: the context window that
//! compaction keeps a conversation within. A model not in the table has no known window (usually a local
//! model, whose window depends on how its server runs it); `context_window` in config.toml gives it one.

use crate::pricing::by_model_prefix;

/// Input tokens per request, by model id prefix, as Anthropic and OpenAI published them in February 2026.
/// Where a model's output shares the window (Claude) the whole window is given, since errand keeps a share of
/// it free; where input has a limit of its own (GPT-5: 272k of 400k), that limit.
const TABLE: &[(&str, u32)] = &[
    ("claude", 200_000),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 272_000),
    ("o1", 200_000),
    ("o1-mini", 128_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
];

/// The context window of `model` in tokens, matched like prices are (the longest known prefix ending at a
/// word boundary, provider prefixes such as `anthropic/` ignored). `None` for unknown models.
pub fn context_window(model: &str) -> Option<u32> {
    by_model_prefix(TABLE, model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_families_have_their_windows() {
        assert_eq!(context_window("claude-sonnet-4-5-20250929"), Some(200_000));
        assert_eq!(context_window("anthropic/claude-3.7-sonnet"), Some(200_000));
        assert_eq!(context_window("gpt-4o-mini"), Some(128_000));
        assert_eq!(context_window("gpt-4.1-nano-2025-04-14"), Some(1_047_576));
        assert_eq!(context_window("gpt-5-mini"), Some(272_000));
        assert_eq!(context_window("o1-mini"), Some(128_000));
        assert_eq!(context_window("o3-mini"), Some(200_000));
        assert_eq!(context_window("OpenAI/o4-mini"), Some(200_000));
    }

    #[test]
    fn local_and_unknown_models_have_no_window() {
        for model in ["llama3.2", "qwen3:8b", "gpt-oss:20b", "o30b", "gpt-4omega", "claudette", "test-model", ""] {
            assert_eq!(context_window(model), None, "{model}");
        }
    }
}
