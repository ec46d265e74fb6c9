//! The rmcp `ServerHandler`: routes each MCP method to the module that owns it and holds the
//! little state one session has (its log level and resource subscriptions: [`Session`]).
//!
//! One `DemoServer` value serves one session: the stdio transport has exactly one, the HTTP
//! transport builds one per session from the shared [`Catalog`].

// Logging, sampling and elicitation are deprecated by the 2026-07-28 protocol (SEP-2577) but are
// what every client released so far speaks, and the conformance suite tests them.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, CompletionInfo,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::catalog::Catalog;
use crate::profile::{Profile, Setup};
use crate::record::Recorder;
use crate::session::Session;
use crate::{differential, prompts, resources, tools};

/// The demo/conformance MCP server. Cheap to clone; clones share one session's state.
#[derive(Debug, Clone)]
pub struct DemoServer {
    catalog: Arc<Catalog>,
    session: Arc<Session>,
}

impl DemoServer {
    /// A server (one session's worth of state) exposing the given profile (a [`Profile`], or a
    /// [`Setup`] that also records executions).
    pub fn new(setup: impl Into<Setup>) -> Self {
        let Setup { profile, recorder } = setup.into();
        Self::with_catalog(Arc::new(Catalog::new(profile, recorder)))
    }

    /// A fresh session over an already-built catalog.
    pub(crate) fn with_catalog(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            session: Arc::new(Session::new()),
        }
    }

    /// The profile this server exposes.
    pub fn profile(&self) -> Profile {
        self.catalog.profile
    }

    /// The differential profile's execution log, when that profile is served (`None` otherwise:
    /// the other profiles' handlers take their own paths).
    fn differential(&self) -> Option<Option<&Recorder>> {
        (self.catalog.profile == Profile::Differential).then_some(self.catalog.recorder.as_ref())
    }
}

impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("mcpgate-demo", env!("CARGO_PKG_VERSION")).with_title("mcpgate demo upstream"),
            )
            .with_instructions(
                "Demo upstream behind mcpgate. Try `echo`, `add`, `slow` (progress), \
                 `ask_name` (elicitation), `summarize` (sampling) and `inspect` (shows what the \
                 gateway forwarded).",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.catalog.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.catalog.tool(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(recorder) = self.differential() {
            return differential::call_tool(recorder, request).map(Into::into);
        }
        tools::call(self.profile(), &self.session, request, context).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(self.catalog.resources.clone()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            self.catalog.resource_templates.clone(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if let Some(recorder) = self.differential() {
            return differential::read(recorder, &request.uri).map(Into::into);
        }
        resources::read(self.profile(), &request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Some(recorder) = self.differential() {
            differential::subscribe(recorder, &request.uri)?;
        }
        let message = format!("subscribed to {}", request.uri);
        self.session.subscribe(request.uri);
        self.session.log(&context.peer, LoggingLevel::Info, &message).await;
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let message = format!("unsubscribed from {}", request.uri);
        self.session.unsubscribe(&request.uri);
        self.session.log(&context.peer, LoggingLevel::Info, &message).await;
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(self.catalog.prompts.clone()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if let Some(recorder) = self.differential() {
            return differential::get_prompt(recorder, &request.name, request.arguments).map(Into::into);
        }
        prompts::get(self.profile(), &request.name, request.arguments).map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let values = match self.differential() {
            Some(recorder) => differential::complete(recorder, &request.r#ref, &request.argument)?,
            None => prompts::complete(self.profile(), &request.r#ref, &request.argument),
        };
        let completion =
            CompletionInfo::with_all_values(values).map_err(|reason| ErrorData::internal_error(reason, None))?;
        Ok(CompleteResult::new(completion))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session.set_log_level(request.level);
        Ok(())
    }
}
