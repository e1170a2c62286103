//! A model of the providers' prompt caches, so tests can see what errand's requests would read from cache.
//!
//! Anthropic: a request marks up to four blocks with `cache_control`; the prefix up to each mark (tools, then
//! system, then messages, in that order) is written to the cache, and a later request whose prefix up to one
//! of its own marks equals a cached one reads that much from the cache. More than four marks is an error the
//! real API returns (400). OpenAI: the longest prefix a request shares with an earlier one is read from the
//! cache in 128-token steps once it reaches 1,024 tokens. Tokens are bytes / 4, as the server counts them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

/// The most `cache_control` marks one Anthropic request may carry.
pub const MAX_BREAKPOINTS: usize = 4;

/// What one request read from and wrote to the cache, in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheUse {
    pub read: u64,
    pub write: u64,
}

/// The cached prefixes seen so far.
#[derive(Debug, Default)]
pub(crate) struct PromptCache {
    /// Anthropic: the hash of each cached prefix, with its length in bytes.
    prefixes: HashMap<u64, usize>,
    /// OpenAI: the canonical text of earlier requests' prompts.
    prompts: Vec<String>,
}

impl PromptCache {
    /// Anthropic: reads the request's marks, returns what it read and wrote, and caches its prefixes. `Err` names
    /// a request with too many marks.
    pub(crate) fn anthropic(&mut self, body: &Value) -> Result<CacheUse, String> {
        let mut blocks: Vec<(String, bool)> = Vec::new();
        let mut push = |value: &Value| {
            let marked = value.get("cache_control").is_some();
            let mut value = value.clone();
            if let Value::Object(object) = &mut value {
                object.remove("cache_control");
            }
            blocks.push((value.to_string(), marked));
        };
        for tool in body["tools"].as_array().into_iter().flatten() {
            push(tool);
        }
        match &body["system"] {
            Value::Array(system) => system.iter().for_each(&mut push),
            Value::String(text) => push(&Value::String(text.clone())),
            _ => {}
        }
        for message in body["messages"].as_array().into_iter().flatten() {
            push(&Value::String(message["role"].as_str().unwrap_or_default().to_string()));
            match &message["content"] {
                Value::Array(content) => content.iter().for_each(&mut push),
                other => push(other),
            }
        }
        let marks = blocks.iter().filter(|(_, marked)| *marked).count();
        if marks > MAX_BREAKPOINTS {
            return Err(format!(
                "{marks} blocks carry cache_control; the Messages API allows at most {MAX_BREAKPOINTS}"
            ));
        }
        let mut hasher = DefaultHasher::new();
        let mut bytes = 0;
        let mut read = 0;
        let mut last_mark = 0;
        let mut written = Vec::new();
        for (text, marked) in &blocks {
            text.hash(&mut hasher);
            bytes += text.len();
            if *marked {
                let hash = hasher.finish();
                if self.prefixes.contains_key(&hash) {
                    read = bytes;
                }
                last_mark = bytes;
                written.push((hash, bytes));
            }
        }
        self.prefixes.extend(written);
        Ok(CacheUse { read: tokens(read), write: tokens(last_mark.saturating_sub(read)) })
    }

    /// OpenAI: what the request's prompt shares with the longest matching earlier one.
    pub(crate) fn openai(&mut self, body: &Value) -> CacheUse {
        let prompt = format!("{}{}", body["tools"], body["messages"]);
        let shared = self
            .prompts
            .iter()
            .map(|earlier| earlier.bytes().zip(prompt.bytes()).take_while(|(a, b)| a == b).count())
            .max()
            .unwrap_or(0);
        self.prompts.push(prompt);
        let shared = tokens(shared);
        let read = if shared >= 1024 { shared / 128 * 128 } else { 0 };
        CacheUse { read, write: 0 }
    }
}

fn tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(messages: &[(&str, bool)]) -> Value {
        let marked = |text: &str, cache: bool| {
            let mut block = json!({"type": "text", "text": text});
            if cache {
                block["cache_control"] = json!({"type": "ephemeral"});
            }
            block
        };
        json!({
            "tools": [{"name": "read_file", "description": "x".repeat(400), "cache_control": {"type": "ephemeral"}}],
            "system": [marked(&"s".repeat(400), true)],
            "messages": messages.iter().enumerate().map(|(index, (text, cache))| json!({
                "role": if index % 2 == 0 { "user" } else { "assistant" },
                "content": [marked(text, *cache)],
            })).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn a_repeated_prefix_is_read_and_the_new_part_written() {
        let mut cache = PromptCache::default();
        let first = cache.anthropic(&request(&[("first question", true)])).unwrap();
        assert_eq!(first.read, 0);
        assert!(first.write > 200, "{first:?}");
        let second =
            cache.anthropic(&request(&[("first question", true), ("an answer", false), ("next", true)])).unwrap();
        assert!(second.read >= first.write, "the first request's prefix is read: {second:?}");
        assert!(second.write > 0 && second.write < 40, "only the new turns are written: {second:?}");
    }

    #[test]
    fn more_than_four_marks_is_refused() {
        let mut cache = PromptCache::default();
        let error = cache.anthropic(&request(&[("a", true), ("b", true), ("c", true)])).unwrap_err();
        assert!(error.contains("5 blocks carry cache_control"), "{error}");
    }

    #[test]
    fn openai_reads_a_long_shared_prefix_in_steps() {
        let mut cache = PromptCache::default();
        let long = "y".repeat(8000);
        let body = |last: &str| json!({"tools": [], "messages": [{"role": "user", "content": long}, {"role": "user", "content": last}]});
        assert_eq!(cache.openai(&body("a")).read, 0);
        let read = cache.openai(&body("b")).read;
        assert!(read >= 1024 && read % 128 == 0, "{read}");
    }
}
