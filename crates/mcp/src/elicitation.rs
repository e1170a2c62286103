//! Elicitation: a server asking the person for input in the middle of a call (`elicitation/create`, form
//! mode). The requested schema is a flat object of primitive fields; [`ElicitationRequest`] is that schema read
//! into fields a front end can ask about one by one, and [`InputField::parse`] turns what the person typed into
//! the JSON value the server expects, so the terminal and the web page agree on what is valid.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A server's request for input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElicitationRequest {
    /// The server asking.
    pub server: String,
    /// What it says to the person.
    pub message: String,
    /// The fields it asks for, by name.
    pub fields: Vec<InputField>,
}

/// One field of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputField {
    /// The key in the answer.
    pub name: String,
    /// A label, when the server gives one.
    pub title: Option<String>,
    /// What the field is for.
    pub description: Option<String>,
    /// What kind of value it takes.
    pub kind: FieldKind,
    /// The server requires it.
    pub required: bool,
    /// The value used when the person gives none.
    pub default: Option<Value>,
}

/// The kinds of value a form field takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// Text, optionally of a format (`email`, `uri`, `date`, `date-time`).
    Text {
        /// The format, when given.
        format: Option<String>,
    },
    /// A number.
    Number,
    /// A whole number.
    Integer,
    /// Yes or no.
    Boolean,
    /// One of a list.
    Choice {
        /// The options.
        options: Vec<ChoiceOption>,
    },
    /// Any of a list.
    Choices {
        /// The options.
        options: Vec<ChoiceOption>,
    },
}

/// One option of a choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOption {
    /// What is sent.
    pub value: String,
    /// What is shown.
    pub label: String,
}

/// The person's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ElicitationAnswer {
    /// The values, by field name.
    Accept {
        /// The values.
        #[serde(default)]
        content: Map<String, Value>,
    },
    /// The person said no.
    Decline,
    /// The person dismissed the question.
    Cancel,
}

/// Something that asks the person and answers for them: the session's front end.
pub type Asker = Arc<dyn Fn(ElicitationRequest) -> BoxFuture<'static, ElicitationAnswer> + Send + Sync>;

/// How errand answers a server's requests for input.
#[derive(Clone, Default)]
pub enum Elicitation {
    /// Decline: nobody can answer (the capability is not even declared).
    #[default]
    Decline,
    /// Accept with every field's default value: what a conformance client does, with no person to ask.
    AcceptDefaults,
    /// Ask the person.
    Ask(Asker),
}

impl std::fmt::Debug for Elicitation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Decline => "Decline",
            Self::AcceptDefaults => "AcceptDefaults",
            Self::Ask(_) => "Ask",
        })
    }
}

fn options(schema: &Value) -> Vec<ChoiceOption> {
    // `enum` (with `enumNames` as labels, the older form), or `oneOf`/`anyOf` of `{const, title}`.
    if let Some(values) = schema["enum"].as_array() {
        let labels = schema["enumNames"].as_array();
        return values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let value = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                let label = labels
                    .and_then(|labels| labels.get(index))
                    .and_then(Value::as_str)
                    .map_or_else(|| value.clone(), str::to_string);
                ChoiceOption { value, label }
            })
            .collect();
    }
    ["oneOf", "anyOf"]
        .iter()
        .filter_map(|key| schema[*key].as_array())
        .flatten()
        .filter_map(|option| {
            let value = match &option["const"] {
                Value::String(value) => value.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some(ChoiceOption { label: option["title"].as_str().map_or_else(|| value.clone(), str::to_string), value })
        })
        .collect()
}

impl ElicitationRequest {
    /// Reads a request's message and `requestedSchema` (the protocol's JSON).
    pub fn from_protocol(server: &str, request: &Value) -> Self {
        let schema = &request["requestedSchema"];
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let fields = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, property)| {
                let text = |key: &str| property[key].as_str().map(str::to_string);
                let kind = match property["type"].as_str() {
                    Some("number") => FieldKind::Number,
                    Some("integer") => FieldKind::Integer,
                    Some("boolean") => FieldKind::Boolean,
                    Some("array") => FieldKind::Choices { options: options(&property["items"]) },
                    _ => {
                        let options = options(property);
                        if options.is_empty() {
                            FieldKind::Text { format: text("format") }
                        } else {
                            FieldKind::Choice { options }
                        }
                    }
                };
                InputField {
                    name: name.clone(),
                    title: text("title"),
                    description: text("description"),
                    kind,
                    required: required.contains(&name.as_str()),
                    default: property.get("default").cloned(),
                }
            })
            .collect();
        Self {
            server: server.to_string(),
            message: request["message"].as_str().unwrap_or_default().to_string(),
            fields,
        }
    }
}

impl InputField {
    /// What the person typed, as the value the server expects: a number for a number field, `true` for
    /// `y`/`yes`/`true`, an option's value for its number or its value or label, comma-separated options for a
    /// multiple choice. An empty answer is the default, or no value; `Err` says what is expected.
    pub fn parse(&self, typed: &str) -> Result<Option<Value>, String> {
        let typed = typed.trim();
        if typed.is_empty() {
            return match (&self.default, self.required) {
                (Some(default), _) => Ok(Some(default.clone())),
                (None, true) => Err("an answer is required".into()),
                (None, false) => Ok(None),
            };
        }
        let pick = |options: &[ChoiceOption], typed: &str| -> Result<String, String> {
            let by_number = typed.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|n| options.get(n));
            by_number
                .or_else(|| options.iter().find(|o| o.value == typed || o.label.eq_ignore_ascii_case(typed)))
                .map(|option| option.value.clone())
                .ok_or_else(|| {
                    let listed: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
                    format!("choose one of: {}", listed.join(", "))
                })
        };
        match &self.kind {
            FieldKind::Text { format } => {
                if format.as_deref() == Some("email") && !typed.contains('@') {
                    return Err("an email address is expected".into());
                }
                Ok(Some(Value::String(typed.to_string())))
            }
            FieldKind::Number => typed
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(|n| Some(Value::Number(n)))
                .ok_or_else(|| "a number is expected".into()),
            FieldKind::Integer => {
                typed.parse::<i64>().map(|n| Some(Value::from(n))).map_err(|_| "a whole number is expected".into())
            }
            FieldKind::Boolean => match typed.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" => Ok(Some(Value::Bool(true))),
                "n" | "no" | "false" => Ok(Some(Value::Bool(false))),
                _ => Err("yes or no is expected".into()),
            },
            FieldKind::Choice { options } => pick(options, typed).map(|value| Some(Value::String(value))),
            FieldKind::Choices { options } => typed
                .split(',')
                .map(|part| pick(options, part.trim()).map(Value::String))
                .collect::<Result<Vec<_>, _>>()
                .map(|values| Some(Value::Array(values))),
        }
    }

    /// The field's label: its title, or its name.
    pub fn label(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }
}
