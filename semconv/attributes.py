"""Attribute names, in one place: every GenAI dialect costspan reads, and the names costspan writes.

Names are grouped by the convention that defines them, with the version that introduced or retired them.
The OpenTelemetry names are checked against the installed ``opentelemetry-semantic-conventions`` package
by the test suite; costspan keeps its own copy because it must keep reading names that package drops.
"""

from __future__ import annotations

# -- OpenTelemetry GenAI semantic conventions ------------------------------------------------------------
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"  # 1.37+
GEN_AI_SYSTEM = "gen_ai.system"  # up to 1.36
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # 1.27+
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"  # 1.27+
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # up to 1.26
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # up to 1.26
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"  # 1.41+, part of input
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"  # 1.41+, part of input
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"  # 1.41+, part of output
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # semantic-conventions drafts
GEN_AI_USAGE_INPUT_TOKENS_CACHED = "gen_ai.usage.input_tokens.cached"  # drafts (as Sentry's conventions)
GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE = "gen_ai.usage.input_tokens.cache_write"  # drafts
GEN_AI_USAGE_OUTPUT_TOKENS_REASONING = "gen_ai.usage.output_tokens.reasoning"  # drafts
GEN_AI_OPENAI_REQUEST_SERVICE_TIER = "gen_ai.openai.request.service_tier"  # up to 1.36
GEN_AI_OPENAI_RESPONSE_SERVICE_TIER = "gen_ai.openai.response.service_tier"  # up to 1.36
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"  # 1.37+
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"  # 1.37+
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_PROMPT_NAME = "gen_ai.prompt.name"
GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
# message content (removed by the redact processor unless configured)
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"
GEN_AI_RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"
GEN_AI_PROMPT = "gen_ai.prompt"  # up to 1.26, and the prefix of OpenLLMetry's gen_ai.prompt.{i}.*
GEN_AI_COMPLETION = "gen_ai.completion"  # likewise gen_ai.completion.{i}.*

# -- general OpenTelemetry ----------------------------------------------------------------------------
SERVICE_NAME = "service.name"
SERVICE_NAMESPACE = "service.namespace"
DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"  # 1.27+
DEPLOYMENT_ENVIRONMENT = "deployment.environment"  # up to 1.26
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
URL_FULL = "url.full"
HTTP_URL = "http.url"  # up to 1.20
NET_PEER_NAME = "net.peer.name"  # up to 1.20
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
ERROR_TYPE = "error.type"
USER_ID = "user.id"
ENDUSER_ID = "enduser.id"  # deprecated for user.id
SESSION_ID = "session.id"

# -- OpenLLMetry (traceloop), before and after its 0.5 conventions -------------------------------------
LLM_REQUEST_TYPE = "llm.request.type"  # chat | completion | embedding | rerank
LLM_USAGE_TOTAL_TOKENS = "llm.usage.total_tokens"
LLM_USAGE_REASONING_TOKENS = "llm.usage.reasoning_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_OLD = "gen_ai.usage.cache_read_input_tokens"  # OpenLLMetry, up to 0.4x
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_OLD = "gen_ai.usage.cache_creation_input_tokens"  # likewise
GEN_AI_USAGE_REASONING_TOKENS_OLD = "gen_ai.usage.reasoning_tokens"
LLM_IS_STREAMING = "llm.is_streaming"
GEN_AI_IS_STREAMING = "gen_ai.is_streaming"  # OpenLLMetry 0.5x
GEN_AI_USAGE_TOTAL_TOKENS = "gen_ai.usage.total_tokens"  # OpenLLMetry 0.5x
TRACELOOP_SPAN_KIND = "traceloop.span.kind"  # workflow | task | agent | tool
TRACELOOP_ENTITY_NAME = "traceloop.entity.name"
TRACELOOP_WORKFLOW_NAME = "traceloop.workflow.name"
TRACELOOP_ASSOCIATION_PREFIX = "traceloop.association.properties."
TRACELOOP_PROMPT_KEY = "traceloop.prompt.key"
TRACELOOP_PROMPT_VERSION = "traceloop.prompt.version"

# -- OpenInference (Arize) ----------------------------------------------------------------------------
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"  # LLM | EMBEDDING | CHAIN | TOOL | AGENT | RETRIEVER ...
OPENINFERENCE_TOOL_NAME = "tool.name"  # on TOOL spans; AGENT and CHAIN spans are named by the span name
OPENINFERENCE_AGENT_NAME = "agent.name"
LLM_MODEL_NAME = "llm.model_name"  # the response's model where both are known (OpenAI)
LLM_REQUEST_MODEL_NAME = "llm.request.model_name"
LLM_RESPONSE_MODEL_NAME = "llm.response.model_name"
LLM_PROVIDER = "llm.provider"
LLM_SYSTEM = "llm.system"
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
LLM_TOKEN_COUNT_PROMPT_CACHE_READ = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_PROMPT_AUDIO = "llm.token_count.prompt_details.audio"
LLM_TOKEN_COUNT_COMPLETION_REASONING = "llm.token_count.completion_details.reasoning"
LLM_TOKEN_COUNT_COMPLETION_AUDIO = "llm.token_count.completion_details.audio"
LLM_COST_TOTAL = "llm.cost.total"
LLM_INVOCATION_PARAMETERS = "llm.invocation_parameters"
EMBEDDING_MODEL_NAME = "embedding.model_name"
INPUT_VALUE = "input.value"
OUTPUT_VALUE = "output.value"
LLM_INPUT_MESSAGES = "llm.input_messages"  # prefix of llm.input_messages.{i}.message.*
LLM_OUTPUT_MESSAGES = "llm.output_messages"
LLM_PROMPTS = "llm.prompts"
LLM_PROMPT_TEMPLATE = "llm.prompt_template.template"
LLM_PROMPT_TEMPLATE_VERSION = "llm.prompt_template.version"
EMBEDDING_EMBEDDINGS = "embedding.embeddings"
RETRIEVAL_DOCUMENTS = "retrieval.documents"
METADATA = "metadata"
TAG_TAGS = "tag.tags"

# -- OpenLIT ------------------------------------------------------------------------------------------
GEN_AI_USAGE_COST = "gen_ai.usage.cost"  # OpenLIT's cost, a double in USD
GEN_AI_APPLICATION_NAME = "gen_ai.application_name"
GEN_AI_ENVIRONMENT = "gen_ai.environment"

# -- Logfire ------------------------------------------------------------------------------------------
OPERATION_COST = "operation.cost"  # USD, from genai-prices

# -- Langfuse (OpenTelemetry-based SDKs) ---------------------------------------------------------------
LANGFUSE_OBSERVATION_TYPE = "langfuse.observation.type"  # generation | embedding | span | agent | tool ...
LANGFUSE_OBSERVATION_MODEL = "langfuse.observation.model.name"
LANGFUSE_OBSERVATION_USAGE_DETAILS = "langfuse.observation.usage_details"  # JSON object
LANGFUSE_OBSERVATION_COST_DETAILS = "langfuse.observation.cost_details"  # JSON object
LANGFUSE_OBSERVATION_INPUT = "langfuse.observation.input"
LANGFUSE_OBSERVATION_OUTPUT = "langfuse.observation.output"
LANGFUSE_OBSERVATION_PROMPT_NAME = "langfuse.observation.prompt.name"
LANGFUSE_OBSERVATION_PROMPT_VERSION = "langfuse.observation.prompt.version"
LANGFUSE_USER_ID = "langfuse.user.id"
LANGFUSE_SESSION_ID = "langfuse.session.id"
LANGFUSE_TRACE_TAGS = "langfuse.trace.tags"
LANGFUSE_TRACE_INPUT = "langfuse.trace.input"
LANGFUSE_TRACE_OUTPUT = "langfuse.trace.output"
LANGFUSE_ENVIRONMENT = "langfuse.environment"

# -- the anthropic SDK's own spans (instrumentation scope com.anthropic.sdk.python) ----------------------
ANTHROPIC_SCOPE = "com.anthropic.sdk.python"
ANTHROPIC_CACHE_CREATION_5M = "anthropic.usage.cache_creation.ephemeral_5m_input_tokens"
ANTHROPIC_CACHE_CREATION_1H = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
ANTHROPIC_RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"  # standard | priority | batch

# -- what costspan writes -----------------------------------------------------------------------------
# the draft GenAI cost convention
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
# breakdown, provenance and attribution
COSTSPAN_COST_PREFIX = "costspan.cost."  # + input | cache_read | cache_write | output | reasoning | other
COSTSPAN_PRICING_STATUS = "costspan.pricing.status"
COSTSPAN_PRICING_MODEL = "costspan.pricing.model"
COSTSPAN_PRICING_PROVIDER = "costspan.pricing.provider"
COSTSPAN_PRICING_CATALOG = "costspan.pricing.catalog"
COSTSPAN_PRICING_RULES = "costspan.pricing.rules"
COSTSPAN_USAGE_CACHE_WRITE_1H = "costspan.usage.cache_write_1h_tokens"
# + a catalog usage key (input_characters, output_images, input_audio_seconds ...): usage beyond tokens,
# written by costspan's instrumentation (record(), speech requests) and priced by the collector
COSTSPAN_USAGE_PREFIX = "costspan.usage."
COSTSPAN_DIALECT = "costspan.dialect"
COSTSPAN_DUPLICATE_OF = "costspan.duplicate_of"
COSTSPAN_FLAGS = "costspan.flags"
COSTSPAN_INPUT_HASH = "costspan.input.hash"
# attribution, as written by costspan's instrumentation and read by the attribute processor
COSTSPAN_FEATURE = "costspan.feature"
COSTSPAN_TEAM = "costspan.team"
COSTSPAN_CUSTOMER_ID = "costspan.customer_id"
COSTSPAN_USER_ID = "costspan.user_id"
COSTSPAN_AGENT = "costspan.agent"
COSTSPAN_STEP = "costspan.step"
COSTSPAN_PROMPT_KEY = "costspan.prompt_key"
COSTSPAN_PROMPT_VERSION = "costspan.prompt_version"
COSTSPAN_ENVIRONMENT = "costspan.environment"
COSTSPAN_TAG_PREFIX = "costspan.tag."
# streams, as costspan's instrumentation saw them
COSTSPAN_STREAM_CUT_SHORT = "costspan.stream.cut_short"  # closed before its end: usage may be partial
COSTSPAN_STREAM_USAGE_REQUESTED = "costspan.stream.usage_requested"  # include_usage added to the request
