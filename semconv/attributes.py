"""Attribute names, in one place: every GenAI dialect costspan reads, and the names costspan writes.

Names are grouped by the convention that defines them, with the version that introduced or retired them.
The OpenTelemetry names are checked against the installed ``opentelemetry-semantic-conventions`` package
by the test suite; costspan keeps its own copy because it must keep reading names that package drops.
"""

from __future__ import annotations

from typing import Final

# Final: the compiled build (setup.py) puts the names into the code that reads them, with no module lookup.

# -- OpenTelemetry GenAI semantic conventions ------------------------------------------------------------
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"  # 1.37+
GEN_AI_SYSTEM: Final = "gen_ai.system"  # up to 1.36
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"  # 1.27+
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"  # 1.27+
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"  # up to 1.26
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"  # up to 1.26
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"  # 1.41+, part of input
# 1.41+, part of input
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"  # 1.41+, part of output
# semantic-conventions drafts
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
# drafts (as Sentry's conventions)
GEN_AI_USAGE_INPUT_TOKENS_CACHED: Final = "gen_ai.usage.input_tokens.cached"
GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE: Final = "gen_ai.usage.input_tokens.cache_write"  # drafts
GEN_AI_USAGE_OUTPUT_TOKENS_REASONING: Final = "gen_ai.usage.output_tokens.reasoning"  # drafts
GEN_AI_OPENAI_REQUEST_SERVICE_TIER: Final = "gen_ai.openai.request.service_tier"  # up to 1.36
GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: Final = "gen_ai.openai.response.service_tier"  # up to 1.36
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"  # 1.37+
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"  # 1.37+
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
# message content (removed by the redact processor unless configured)
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"
GEN_AI_RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"
GEN_AI_PROMPT: Final = "gen_ai.prompt"  # up to 1.26, and the prefix of OpenLLMetry's gen_ai.prompt.{i}.*
GEN_AI_COMPLETION: Final = "gen_ai.completion"  # likewise gen_ai.completion.{i}.*

# -- general OpenTelemetry ----------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_NAMESPACE: Final = "service.namespace"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"  # 1.27+
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment"  # up to 1.26
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
URL_FULL: Final = "url.full"
HTTP_URL: Final = "http.url"  # up to 1.20
NET_PEER_NAME: Final = "net.peer.name"  # up to 1.20
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
ERROR_TYPE: Final = "error.type"
USER_ID: Final = "user.id"
ENDUSER_ID: Final = "enduser.id"  # deprecated for user.id
SESSION_ID: Final = "session.id"

# -- OpenLLMetry (traceloop), before and after its 0.5 conventions -------------------------------------
LLM_REQUEST_TYPE: Final = "llm.request.type"  # chat | completion | embedding | rerank
LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
LLM_USAGE_REASONING_TOKENS: Final = "llm.usage.reasoning_tokens"
# OpenLLMetry, up to 0.4x
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_read_input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_creation_input_tokens"  # likewise
GEN_AI_USAGE_REASONING_TOKENS_OLD: Final = "gen_ai.usage.reasoning_tokens"
LLM_IS_STREAMING: Final = "llm.is_streaming"
GEN_AI_IS_STREAMING: Final = "gen_ai.is_streaming"  # OpenLLMetry 0.5x
GEN_AI_USAGE_TOTAL_TOKENS: Final = "gen_ai.usage.total_tokens"  # OpenLLMetry 0.5x
TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"  # workflow | task | agent | tool
TRACELOOP_ENTITY_NAME: Final = "traceloop.entity.name"
TRACELOOP_WORKFLOW_NAME: Final = "traceloop.workflow.name"
TRACELOOP_ASSOCIATION_PREFIX: Final = "traceloop.association.properties."
TRACELOOP_PROMPT_KEY: Final = "traceloop.prompt.key"
TRACELOOP_PROMPT_VERSION: Final = "traceloop.prompt.version"

# -- OpenInference (Arize) ----------------------------------------------------------------------------
# LLM | EMBEDDING | CHAIN | TOOL | AGENT | RETRIEVER ...
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
# on TOOL spans; AGENT and CHAIN spans are named by the span name
OPENINFERENCE_TOOL_NAME: Final = "tool.name"
OPENINFERENCE_AGENT_NAME: Final = "agent.name"
LLM_MODEL_NAME: Final = "llm.model_name"  # the response's model where both are known (OpenAI)
LLM_REQUEST_MODEL_NAME: Final = "llm.request.model_name"
LLM_RESPONSE_MODEL_NAME: Final = "llm.response.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_SYSTEM: Final = "llm.system"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
LLM_TOKEN_COUNT_PROMPT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_PROMPT_AUDIO: Final = "llm.token_count.prompt_details.audio"
LLM_TOKEN_COUNT_COMPLETION_REASONING: Final = "llm.token_count.completion_details.reasoning"
LLM_TOKEN_COUNT_COMPLETION_AUDIO: Final = "llm.token_count.completion_details.audio"
LLM_COST_TOTAL: Final = "llm.cost.total"
LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"
LLM_INPUT_MESSAGES: Final = "llm.input_messages"  # prefix of llm.input_messages.{i}.message.*
LLM_OUTPUT_MESSAGES: Final = "llm.output_messages"
LLM_PROMPTS: Final = "llm.prompts"
LLM_PROMPT_TEMPLATE: Final = "llm.prompt_template.template"
LLM_PROMPT_TEMPLATE_VERSION: Final = "llm.prompt_template.version"
EMBEDDING_EMBEDDINGS: Final = "embedding.embeddings"
RETRIEVAL_DOCUMENTS: Final = "retrieval.documents"
METADATA: Final = "metadata"
TAG_TAGS: Final = "tag.tags"

# -- OpenLIT ------------------------------------------------------------------------------------------
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"  # OpenLIT's cost, a double in USD
GEN_AI_APPLICATION_NAME: Final = "gen_ai.application_name"
GEN_AI_ENVIRONMENT: Final = "gen_ai.environment"

# -- Logfire and pydantic-ai ---------------------------------------------------------------------------
OPERATION_COST: Final = "operation.cost"  # USD, from genai-prices
# pydantic-ai's RequestUsage.opentelemetry_attributes: the provider's usage details beside the OpenTelemetry
# counts (input includes cache reads and writes; reasoning is part of output)
GEN_AI_USAGE_DETAILS_PREFIX: Final = "gen_ai.usage.details."
GEN_AI_USAGE_DETAILS_CACHE_READ_TOKENS: Final = "gen_ai.usage.details.cache_read_tokens"
GEN_AI_USAGE_DETAILS_CACHE_WRITE_TOKENS: Final = "gen_ai.usage.details.cache_write_tokens"
GEN_AI_USAGE_DETAILS_EPHEMERAL_1H: Final = "gen_ai.usage.details.ephemeral_1h_input_tokens"  # Anthropic
GEN_AI_USAGE_DETAILS_REASONING_TOKENS: Final = "gen_ai.usage.details.reasoning_tokens"
GEN_AI_USAGE_DETAILS_INPUT_AUDIO_TOKENS: Final = "gen_ai.usage.details.input_audio_tokens"
GEN_AI_USAGE_DETAILS_CACHE_AUDIO_READ_TOKENS: Final = "gen_ai.usage.details.cache_audio_read_tokens"
GEN_AI_USAGE_DETAILS_OUTPUT_AUDIO_TOKENS: Final = "gen_ai.usage.details.output_audio_tokens"
# pydantic-ai's message content: the agent run's messages and result, a tool call's arguments and result
PYDANTIC_AI_ALL_MESSAGES: Final = "pydantic_ai.all_messages"
PYDANTIC_AI_FINAL_RESULT: Final = "final_result"
PYDANTIC_AI_TOOL_ARGUMENTS: Final = "tool_arguments"
PYDANTIC_AI_TOOL_RESPONSE: Final = "tool_response"

# -- Langfuse (OpenTelemetry-based SDKs) ---------------------------------------------------------------
# generation | embedding | span | agent | tool ...
LANGFUSE_OBSERVATION_TYPE: Final = "langfuse.observation.type"
LANGFUSE_OBSERVATION_MODEL: Final = "langfuse.observation.model.name"
# JSON object; its OpenAI integration adds the response's service_tier
LANGFUSE_OBSERVATION_MODEL_PARAMETERS: Final = "langfuse.observation.model.parameters"
LANGFUSE_OBSERVATION_USAGE_DETAILS: Final = "langfuse.observation.usage_details"  # JSON object
LANGFUSE_OBSERVATION_COST_DETAILS: Final = "langfuse.observation.cost_details"  # JSON object
LANGFUSE_OBSERVATION_INPUT: Final = "langfuse.observation.input"
LANGFUSE_OBSERVATION_OUTPUT: Final = "langfuse.observation.output"
LANGFUSE_OBSERVATION_PROMPT_NAME: Final = "langfuse.observation.prompt.name"
LANGFUSE_OBSERVATION_PROMPT_VERSION: Final = "langfuse.observation.prompt.version"
LANGFUSE_USER_ID: Final = "langfuse.user.id"
LANGFUSE_SESSION_ID: Final = "langfuse.session.id"
LANGFUSE_TRACE_TAGS: Final = "langfuse.trace.tags"
LANGFUSE_TRACE_INPUT: Final = "langfuse.trace.input"
LANGFUSE_TRACE_OUTPUT: Final = "langfuse.trace.output"
LANGFUSE_ENVIRONMENT: Final = "langfuse.environment"

# -- the AI SDK (Vercel, the npm package ``ai``) with experimental_telemetry ------------------------------
# ai.generateText | ai.generateText.doGenerate | ai.streamText.doStream | ai.embed.doEmbed | ai.toolCall ...
AI_OPERATION_ID: Final = "ai.operationId"
AI_MODEL_PROVIDER: Final = "ai.model.provider"  # openai.chat | openai.responses | anthropic.messages ...
AI_MODEL_ID: Final = "ai.model.id"  # the requested model
AI_RESPONSE_MODEL: Final = "ai.response.model"
AI_RESPONSE_ID: Final = "ai.response.id"
AI_RESPONSE_MS_TO_FIRST_CHUNK: Final = "ai.response.msToFirstChunk"
AI_RESPONSE_PROVIDER_METADATA: Final = "ai.response.providerMetadata"  # JSON: the provider's own usage
AI_TELEMETRY_FUNCTION_ID: Final = "ai.telemetry.functionId"
AI_TOOL_CALL_NAME: Final = "ai.toolCall.name"
AI_USAGE_PROMPT_TOKENS: Final = "ai.usage.promptTokens"  # up to ai 4, and generateText in ai 5
AI_USAGE_COMPLETION_TOKENS: Final = "ai.usage.completionTokens"  # likewise
AI_USAGE_INPUT_TOKENS: Final = "ai.usage.inputTokens"  # ai 5+
AI_USAGE_OUTPUT_TOKENS: Final = "ai.usage.outputTokens"  # ai 5+
AI_USAGE_CACHED_INPUT_TOKENS: Final = "ai.usage.cachedInputTokens"  # ai 5+
AI_USAGE_REASONING_TOKENS: Final = "ai.usage.reasoningTokens"  # ai 5+
AI_USAGE_TOKENS: Final = "ai.usage.tokens"  # embeddings
# ai 6+: the input count includes cache reads and writes whatever the provider's own arithmetic
AI_USAGE_INPUT_NO_CACHE_TOKENS: Final = "ai.usage.inputTokenDetails.noCacheTokens"
AI_USAGE_INPUT_CACHE_READ_TOKENS: Final = "ai.usage.inputTokenDetails.cacheReadTokens"
AI_USAGE_INPUT_CACHE_WRITE_TOKENS: Final = "ai.usage.inputTokenDetails.cacheWriteTokens"
AI_USAGE_OUTPUT_REASONING_TOKENS: Final = "ai.usage.outputTokenDetails.reasoningTokens"
# message content (removed by the redact processor unless configured)
AI_CONTENT: Final = (
    "ai.prompt",
    "ai.prompt.messages",
    "ai.prompt.tools",
    "ai.response.text",
    "ai.response.reasoning",
    "ai.response.toolCalls",
    "ai.response.object",
    "ai.response.files",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "ai.value",
    "ai.values",
    "ai.embedding",
    "ai.embeddings",
    "ai.documents",
    "ai.ranking",
)

# -- the anthropic SDK's own spans (instrumentation scope com.anthropic.sdk.python) ----------------------
ANTHROPIC_SCOPE: Final = "com.anthropic.sdk.python"
ANTHROPIC_CACHE_CREATION_5M: Final = "anthropic.usage.cache_creation.ephemeral_5m_input_tokens"
ANTHROPIC_CACHE_CREATION_1H: Final = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
ANTHROPIC_RESPONSE_SERVICE_TIER: Final = "anthropic.response.service_tier"  # standard | priority | batch
# Providers' usage fields no catalog unit prices, kept under the provider's name as costspan's
# instrumentation read them: xAI's live search sources (num_sources_used, as the xai-openapi crate types
# xAI's API), Groq's server timings in seconds (groq-typescript's CompletionUsage, from Groq's API spec)
XAI_USAGE_NUM_SOURCES_USED: Final = "x_ai.usage.num_sources_used"
GROQ_USAGE_PREFIX: Final = "groq.usage."  # + queue_time | prompt_time | completion_time | total_time

# -- what costspan writes -----------------------------------------------------------------------------
# the draft GenAI cost convention
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
# breakdown, provenance and attribution
# + input | cache_read | cache_write | output | reasoning | other
COSTSPAN_COST_PREFIX: Final = "costspan.cost."
COSTSPAN_PRICING_STATUS: Final = "costspan.pricing.status"
COSTSPAN_PRICING_MODEL: Final = "costspan.pricing.model"
COSTSPAN_PRICING_PROVIDER: Final = "costspan.pricing.provider"
COSTSPAN_PRICING_CATALOG: Final = "costspan.pricing.catalog"
COSTSPAN_PRICING_RULES: Final = "costspan.pricing.rules"
COSTSPAN_USAGE_CACHE_WRITE_1H: Final = "costspan.usage.cache_write_1h_tokens"
# + a catalog usage key (input_characters, output_images, input_audio_seconds ...): usage beyond tokens,
# written by costspan's instrumentation (record(), speech requests) and priced by the collector
COSTSPAN_USAGE_PREFIX: Final = "costspan.usage."
COSTSPAN_DIALECT: Final = "costspan.dialect"
COSTSPAN_DUPLICATE_OF: Final = "costspan.duplicate_of"
COSTSPAN_FLAGS: Final = "costspan.flags"
COSTSPAN_INPUT_HASH: Final = "costspan.input.hash"
# attribution, as written by costspan's instrumentation and read by the attribute processor
COSTSPAN_FEATURE: Final = "costspan.feature"
COSTSPAN_TEAM: Final = "costspan.team"
COSTSPAN_CUSTOMER_ID: Final = "costspan.customer_id"
COSTSPAN_USER_ID: Final = "costspan.user_id"
COSTSPAN_AGENT: Final = "costspan.agent"
COSTSPAN_STEP: Final = "costspan.step"
COSTSPAN_PROMPT_KEY: Final = "costspan.prompt_key"
COSTSPAN_PROMPT_VERSION: Final = "costspan.prompt_version"
COSTSPAN_ENVIRONMENT: Final = "costspan.environment"
COSTSPAN_TAG_PREFIX: Final = "costspan.tag."
# streams, as costspan's instrumentation saw them
COSTSPAN_STREAM_CUT_SHORT: Final = "costspan.stream.cut_short"  # closed before its end: usage may be partial
# include_usage added to the request
COSTSPAN_STREAM_USAGE_REQUESTED: Final = "costspan.stream.usage_requested"
