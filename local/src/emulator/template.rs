//! What the emulator takes from `template.yaml`: each function's binary, HTTP API routes,
//! timeout and environment, and the WebSocket API's function, stage and routes. The
//! environment is resolved as CloudFormation would resolve it for the given parameters, so a
//! function gets exactly the variables a deployed stack gives it, and nothing more.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_norway::Value;

/// One `AWS::Serverless::Function`.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The Cargo binary (`BuildProperties.Binary`).
    pub binary: String,
    /// `(method, path)` of each HttpApi event, the path with `{name}` parameters.
    pub routes: Vec<(String, String)>,
    pub timeout_seconds: u64,
    pub memory_mb: u64,
    /// `LoggingConfig.LogFormat` (`Text` or `JSON`), which Lambda tells the function in
    /// `AWS_LAMBDA_LOG_FORMAT`.
    pub log_format: String,
    pub environment: BTreeMap<String, String>,
}

/// The WebSocket API: the function its integration invokes, its stage and its route keys.
#[derive(Debug, Clone)]
pub struct WebSocketSpec {
    pub function: String,
    pub stage: String,
    pub route_keys: Vec<String>,
    /// The body field `RouteSelectionExpression` names (`$request.body.<field>`).
    pub selection_field: String,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub functions: Vec<FunctionSpec>,
    pub websocket: Option<WebSocketSpec>,
    /// Every parameter's value: the given one, else the template's default.
    pub parameters: BTreeMap<String, String>,
}

/// What `!Ref` of a resource or a pseudo parameter stands for here (the table's name, the
/// secret's id, ...), and the parameter values that override the template's defaults.
pub struct Bindings<'a> {
    pub parameters: &'a BTreeMap<String, String>,
    pub resources: &'a BTreeMap<String, String>,
}

impl Template {
    pub fn load(path: &Path, bindings: &Bindings) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let document: Value =
            serde_norway::from_str(&text).with_context(|| format!("{} is not YAML", path.display()))?;
        let mut parameters = BTreeMap::new();
        for (name, parameter) in mapping(&document["Parameters"]) {
            let value = bindings.parameters.get(&name).cloned().or_else(|| scalar(&parameter["Default"]));
            parameters.insert(name, value.unwrap_or_default());
        }
        if let Some(unknown) = bindings.parameters.keys().find(|name| !parameters.contains_key(*name)) {
            bail!("the template has no parameter {unknown}");
        }
        let resolver = Resolver { document: &document, parameters, resources: bindings.resources };
        let resources = mapping(&document["Resources"]);
        let globals = &document["Globals"]["Function"];
        let mut functions = Vec::new();
        for (logical_id, resource) in &resources {
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let properties = &resource["Properties"];
            let binary = scalar(&resource["Metadata"]["BuildProperties"]["Binary"])
                .ok_or_else(|| anyhow!("{logical_id} names no BuildProperties.Binary"))?;
            let routes = mapping(&properties["Events"])
                .into_iter()
                .filter(|(_, event)| event["Type"].as_str() == Some("HttpApi"))
                .filter_map(|(_, event)| {
                    Some((
                        scalar(&event["Properties"]["Method"])?.to_uppercase(),
                        scalar(&event["Properties"]["Path"])?,
                    ))
                })
                .collect();
            let mut environment = BTreeMap::new();
            for variables in [&globals["Environment"]["Variables"], &properties["Environment"]["Variables"]] {
                for (name, value) in mapping(variables) {
                    match resolver.resolve(&value).with_context(|| format!("{logical_id}: {name}"))? {
                        Some(value) => environment.insert(name, value),
                        None => environment.remove(&name),
                    };
                }
            }
            let number = |key: &str, default: u64| -> anyhow::Result<u64> {
                let value = [&properties[key], &globals[key]].into_iter().find(|value| !value.is_null());
                let Some(value) = value else { return Ok(default) };
                let text = resolver.resolve(value)?.unwrap_or_default();
                text.parse().with_context(|| format!("{logical_id}: {key} {text:?} is not a number"))
            };
            functions.push(FunctionSpec {
                logical_id: logical_id.clone(),
                binary,
                routes,
                timeout_seconds: number("Timeout", 3)?,
                memory_mb: number("MemorySize", 128)?,
                log_format: scalar(&properties["LoggingConfig"]["LogFormat"])
                    .or_else(|| scalar(&globals["LoggingConfig"]["LogFormat"]))
                    .unwrap_or_else(|| "Text".to_owned()),
                environment,
            });
        }
        let websocket = websocket(&resources)?;
        Ok(Self { functions, websocket, parameters: resolver.parameters })
    }
}

fn websocket(resources: &[(String, Value)]) -> anyhow::Result<Option<WebSocketSpec>> {
    let of_type =
        |kind: &'static str| resources.iter().filter(move |(_, resource)| resource["Type"].as_str() == Some(kind));
    let Some((_, api)) = of_type("AWS::ApiGatewayV2::Api")
        .find(|(_, api)| api["Properties"]["ProtocolType"].as_str() == Some("WEBSOCKET"))
    else {
        return Ok(None);
    };
    let selection = scalar(&api["Properties"]["RouteSelectionExpression"]).unwrap_or_default();
    let selection_field = selection
        .strip_prefix("$request.body.")
        .ok_or_else(|| anyhow!("the WebSocket API selects routes by {selection:?}, not by a body field"))?
        .to_owned();
    // The integration's URI is a !Sub naming `${<Function>.Arn}`.
    let function = of_type("AWS::ApiGatewayV2::Integration")
        .find_map(|(_, integration)| {
            let uri = serde_norway::to_string(&integration["Properties"]["IntegrationUri"]).ok()?;
            let end = uri.find(".Arn}")?;
            let start = uri[..end].rfind("${")? + 2;
            Some(uri[start..end].to_owned())
        })
        .ok_or_else(|| anyhow!("the WebSocket API's integration names no function"))?;
    let stage = of_type("AWS::ApiGatewayV2::Stage")
        .find_map(|(_, stage)| scalar(&stage["Properties"]["StageName"]))
        .ok_or_else(|| anyhow!("the WebSocket API has no stage"))?;
    let route_keys =
        of_type("AWS::ApiGatewayV2::Route").filter_map(|(_, route)| scalar(&route["Properties"]["RouteKey"])).collect();
    Ok(Some(WebSocketSpec { function, stage, route_keys, selection_field }))
}

fn mapping(value: &Value) -> Vec<(String, Value)> {
    value
        .as_mapping()
        .map(|map| map.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
        .unwrap_or_default()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The intrinsic functions the template's environment uses, evaluated as CloudFormation does.
struct Resolver<'a> {
    document: &'a Value,
    parameters: BTreeMap<String, String>,
    resources: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    /// A value, or `None` for `AWS::NoValue`.
    fn resolve(&self, value: &Value) -> anyhow::Result<Option<String>> {
        let Value::Tagged(tagged) = value else {
            return scalar(value).map(Some).ok_or_else(|| anyhow!("not a scalar: {value:?}"));
        };
        let argument = &tagged.value;
        let list = || argument.as_sequence().cloned().unwrap_or_default();
        match tagged.tag.to_string().as_str() {
            "!Ref" => self.reference(&scalar(argument).unwrap_or_default()),
            "!Sub" => self.substitute(&scalar(argument).ok_or_else(|| anyhow!("!Sub takes a string here"))?).map(Some),
            "!If" => {
                let branches = list();
                let [condition, then, otherwise] = branches.as_slice() else { bail!("!If takes three arguments") };
                let name = scalar(condition).unwrap_or_default();
                self.resolve(if self.condition(&name)? { then } else { otherwise })
            }
            "!Select" => {
                let arguments = list();
                let [index, items] = arguments.as_slice() else { bail!("!Select takes two arguments") };
                let index: usize =
                    scalar(index).and_then(|i| i.parse().ok()).ok_or_else(|| anyhow!("!Select index"))?;
                Ok(self.items(items)?.get(index).cloned())
            }
            tag => bail!("the emulator cannot evaluate {tag} in an environment variable"),
        }
    }

    fn items(&self, value: &Value) -> anyhow::Result<Vec<String>> {
        match value {
            Value::Tagged(tagged) if tagged.tag == "!Split" => {
                let arguments = tagged.value.as_sequence().cloned().unwrap_or_default();
                let [separator, text] = arguments.as_slice() else { bail!("!Split takes two arguments") };
                let text = self.resolve(text)?.unwrap_or_default();
                Ok(text.split(scalar(separator).unwrap_or_default().as_str()).map(str::to_owned).collect())
            }
            Value::Sequence(items) => items.iter().map(|item| Ok(self.resolve(item)?.unwrap_or_default())).collect(),
            other => bail!("not a list: {other:?}"),
        }
    }

    fn reference(&self, name: &str) -> anyhow::Result<Option<String>> {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        let pseudo = match name {
            "AWS::Region" => Some("us-east-1"),
            "AWS::AccountId" => Some("123456789012"),
            "AWS::Partition" => Some("aws"),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            "AWS::StackName" => Some("latchkey-local"),
            _ => None,
        };
        pseudo
            .map(str::to_owned)
            .or_else(|| self.parameters.get(name).cloned())
            .or_else(|| self.resources.get(name).cloned())
            .map(Some)
            .ok_or_else(|| anyhow!("nothing here stands for the resource {name}"))
    }

    fn substitute(&self, text: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').ok_or_else(|| anyhow!("unclosed ${{ in {text:?}"))? + start;
            out.push_str(&rest[..start]);
            out.push_str(&self.reference(&rest[start + 2..end])?.unwrap_or_default());
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn condition(&self, name: &str) -> anyhow::Result<bool> {
        let definition = &self.document["Conditions"][name];
        if definition.is_null() {
            bail!("the template has no condition {name}");
        }
        self.truth(definition)
    }

    fn truth(&self, value: &Value) -> anyhow::Result<bool> {
        let Value::Tagged(tagged) = value else { bail!("not a condition: {value:?}") };
        let arguments = tagged.value.as_sequence().cloned().unwrap_or_default();
        match tagged.tag.to_string().as_str() {
            "!Not" => Ok(!self.truth(arguments.first().ok_or_else(|| anyhow!("!Not takes one argument"))?)?),
            "!Equals" => {
                let [left, right] = arguments.as_slice() else { bail!("!Equals takes two arguments") };
                Ok(self.resolve(left)? == self.resolve(right)?)
            }
            "!Condition" => self.condition(&scalar(&tagged.value).unwrap_or_default()),
            tag => bail!("the emulator cannot evaluate the condition {tag}"),
        }
    }
}
