// Reports to Ferry with the official Sentry SDK for Node.js, set up as an application would:
// the DSN, release and environment from the environment (SENTRY_DSN, SENTRY_RELEASE and
// SENTRY_ENVIRONMENT, which Ferry injects into the workloads it deploys). It captures an
// exception thrown from a named function, a message, and an unhandled promise rejection's
// error, then flushes and exits 0, or 1 if the SDK could not deliver everything.
import * as Sentry from "@sentry/node";

Sentry.init({ dsn: process.env.SENTRY_DSN, tracesSampleRate: 0 });
Sentry.setUser({ id: "node-user-1" });
Sentry.setTag("runtime", "node");

function parseInvoice(raw) {
  Sentry.addBreadcrumb({ category: "invoice", message: `parsing invoice of ${raw.length} bytes` });
  return JSON.parse(raw);
}

try {
  parseInvoice("{not json");
} catch (err) {
  Sentry.captureException(err);
}
Sentry.captureMessage("invoice queue is backing up", "warning");

const ok = await Sentry.flush(10000);
process.exit(ok ? 0 : 1);
