//! The built-in file tools, one module each, and what they share: argument checking against the schema,
//! running blocking file work off the async runtime, and atomic writes.

pub(crate) mod delete_path;
pub(crate) mod edit_file;
pub(crate) mod glob;
pub(crate) mod grep;
pub(crate) mod list_dir;
pub(crate) mod move_path;
pub(crate) mod read_file;
pub(crate) mod write_file;

#[cfg(test)]
pub(crate) mod test_support;

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ToolError, ToolOutput};

/// Checks `input` against the tool's own `schema` (so messages name the argument and its type), then
/// parses it into the typed arguments.
pub(crate) fn parse_args<T: DeserializeOwned>(
    tool: &'static str,
    schema: &Value,
    input: &Value,
) -> Result<T, ToolError> {
    let invalid = |message: String| ToolError::InvalidInput { tool, message };
    let Some(object) = input.as_object() else {
        return Err(invalid("the arguments must be a JSON object".to_string()));
    };
    let empty = serde_json::Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for (name, value) in object {
        let Some(property) = properties.get(name) else {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            return Err(invalid(format!("unknown argument `{name}`; the arguments are {}", known.join(", "))));
        };
        let expected = property["type"].as_str().unwrap_or_default();
        // Models often send null for an optional argument they mean to leave out.
        let optional_null = value.is_null() && !required.contains(&name.as_str());
        let fits = match expected {
            "string" => value.is_string(),
            "integer" => value.is_u64(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !fits && !optional_null {
            return Err(invalid(format!("argument `{name}` must be {}, not {value}", describe_type(expected))));
        }
    }
    for name in required {
        if !object.contains_key(name) {
            let expected = properties.get(name).and_then(|property| property["type"].as_str()).unwrap_or_default();
            return Err(invalid(format!("missing argument `{name}` ({})", describe_type(expected))));
        }
    }
    serde_json::from_value(input.clone()).map_err(|error| invalid(error.to_string()))
}

fn describe_type(json_type: &str) -> &'static str {
    match json_type {
        "string" => "a string",
        "integer" => "a whole number of at least 0",
        "boolean" => "true or false",
        _ => "a JSON value",
    }
}

/// The body of every file tool's `run`: parses `input` into the tool's arguments and runs `work` on the
/// blocking pool; an argument error or a failure of `work` becomes the tool's error output.
pub(crate) fn spawn_tool<A: DeserializeOwned + Send + 'static>(
    tool: &dyn crate::Tool,
    input: &Value,
    ctx: &crate::ToolContext,
    work: fn(&A, &crate::ToolContext) -> Result<ToolOutput, String>,
) -> futures::future::BoxFuture<'static, ToolOutput> {
    let args = parse_args::<A>(tool.name(), &tool.input_schema(), input);
    let ctx = ctx.clone();
    Box::pin(run_blocking(tool.name(), move || match args {
        Ok(args) => work(&args, &ctx).unwrap_or_else(ToolOutput::error),
        Err(error) => ToolOutput::error(error.to_string()),
    }))
}

/// Runs blocking file work on tokio's blocking pool.
pub(crate) async fn run_blocking(tool: &'static str, work: impl FnOnce() -> ToolOutput + Send + 'static) -> ToolOutput {
    match tokio::task::spawn_blocking(work).await {
        Ok(output) => output,
        Err(error) => {
            ToolOutput::error(format!("{tool} failed unexpectedly ({error}); try again or take another approach"))
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, written and synced, then renamed over `path`, then
/// the folder synced so the rename survives a crash. Keeps the permissions of a file it replaces; a new file
/// gets the usual `0666` minus the umask.
///
/// The temporary file lives in `staging` (errand's own folder) when that is on the same file system, so even
/// `kill -9` mid-write leaves nothing in the person's folder; otherwise it lives beside `path`.
pub fn write_atomically(path: &Path, bytes: &[u8], staging: Option<&Path>) -> io::Result<()> {
    let parent =
        path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no parent folder"))?;
    let old_permissions = fs::metadata(path).ok().map(|metadata| metadata.permissions());
    let folder = staging.filter(|staging| same_file_system(staging, parent)).unwrap_or(parent);
    let mut temporary =
        tempfile::Builder::new().prefix(".errand-").permissions(Permissions::from_mode(0o666)).tempfile_in(folder)?;
    temporary.write_all(bytes)?;
    if let Some(permissions) = old_permissions {
        temporary.as_file().set_permissions(permissions)?;
    }
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    File::open(parent)?.sync_all()
}

fn same_file_system(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// Creates the folders above `path` that are missing.
pub(crate) fn create_parent_folders(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
}
