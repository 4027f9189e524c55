// Sends two GenAI chat spans (latest GenAI semantic conventions), the second inside an invoke_agent span,
// to an OTLP endpoint with one of the OpenTelemetry JS SDK's trace exporters, then prints one JSON line per
// chat span with the ids the SDK made (trace, span, parent).
//
//   node send_genai_spans.mjs grpc|http/protobuf|http/json ENDPOINT SERVICE_NAME
//
// ENDPOINT is the base URL (http://127.0.0.1:4317 for gRPC, http://127.0.0.1:4318 for HTTP).
// Exits non-zero if the exporter reports a failed export, so a test cannot pass on a silent drop.

import { context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter as GrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";

const [protocol, endpoint, serviceName] = process.argv.slice(2);
if (!protocol || !endpoint || !serviceName) {
  console.error("usage: node send_genai_spans.mjs grpc|http/protobuf|http/json ENDPOINT SERVICE_NAME");
  process.exit(2);
}

function makeExporter() {
  switch (protocol) {
    case "grpc":
      return new GrpcExporter({ url: endpoint });
    case "http/protobuf":
      return new ProtobufExporter({ url: `${endpoint}/v1/traces` });
    case "http/json":
      return new JsonExporter({ url: `${endpoint}/v1/traces` });
    default:
      console.error(`unknown protocol ${protocol}`);
      process.exit(2);
  }
}

// The SDK only logs a failed export; this wrapper keeps each result so the script can fail on it.
const exporter = makeExporter();
const failures = [];
const checkedExporter = {
  export(spans, resultCallback) {
    exporter.export(spans, (result) => {
      if (result.code !== 0 /* ExportResultCode.SUCCESS */) failures.push(String(result.error ?? "export failed"));
      resultCallback(result);
    });
  },
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush(),
};

const provider = new TracerProvider({
  resource: resourceFromAttributes({ "service.name": serviceName }),
  spanProcessors: [new SimpleSpanProcessor({ exporter: checkedExporter })],
});
const tracer = provider.getTracer("costspan-js-client-test", "1.0.0");

// Token counts follow the GenAI conventions' arithmetic: input_tokens includes the cache reads.
const calls = [
  {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 400,
    "gen_ai.usage.output_tokens": 300,
    "costspan.team": "payments",
    "costspan.feature": "checkout-assistant",
  },
  {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 2000,
    "gen_ai.usage.cache_read.input_tokens": 1500,
    "gen_ai.usage.output_tokens": 500,
    "costspan.team": "support",
    "costspan.feature": "ticket-triage",
  },
];

const agent = tracer.startSpan("invoke_agent support-bot", {
  attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot" },
});
const parents = [undefined, agent];

const sent = [];
calls.forEach((attributes, i) => {
  const parentContext = parents[i] ? trace.setSpan(context.active(), parents[i]) : context.active();
  const span = tracer.startSpan(`chat ${attributes["gen_ai.request.model"]}`, { attributes }, parentContext);
  const { traceId, spanId } = span.spanContext();
  span.end();
  sent.push({
    model: attributes["gen_ai.request.model"],
    trace_id: traceId,
    span_id: spanId,
    parent_span_id: parents[i]?.spanContext().spanId ?? "",
  });
});
agent.end();

await provider.forceFlush().catch(() => {}); // failures are collected above, with their cause
await provider.shutdown();
if (failures.length > 0) {
  console.error(`${protocol}: ${failures.join("; ")}`);
  process.exit(1);
}
for (const span of sent) console.log(JSON.stringify(span));
