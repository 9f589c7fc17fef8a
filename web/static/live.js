// Live updates: the server's push stream (server-sent events) when it has one, otherwise
// polling the read API once a second. Handlers must be idempotent: while the stream
// (re)connects both may deliver the same data.
const RETRY_STREAM_MS = 30000; // after the stream was refused (e.g. 404), try it again this often

// subscribe({url, handlers: {event: fn(data)}, poll: async fn, interval, onMode, safety, safetyMs})
// Returns {stop(), mode(), pollNow()}. Modes: "connecting", "live" (stream), "polling", "stopped".
// While the stream is up, `safety` (if given) still runs every `safetyMs`: a cheap check for
// anything written without an event (say, a tool that edits the database directly).
function subscribe({ url, handlers, poll, interval = 1000, onMode, safety = null, safetyMs = 5000 }) {
  let es = null;
  let safetyTimer = null;
  let pollTimer = null;
  let polling = false;
  let retryTimer = null;
  let stopped = false;
  let mode = "connecting";

  function setMode(m) {
    if (m === mode) return;
    mode = m;
    clearInterval(safetyTimer);
    if (m === "live" && safety) {
      safetyTimer = setInterval(() => safety().catch((err) => console.warn("fitscope check:", err)), safetyMs);
    }
    if (onMode) onMode(m);
  }

  async function pollOnce() {
    try {
      await poll();
    } catch (err) {
      console.warn("fitscope poll:", err);
    }
  }

  function startPolling() {
    if (polling || stopped) return;
    polling = true;
    const tick = async () => {
      if (!polling || stopped) return;
      await pollOnce();
      if (polling && !stopped) pollTimer = setTimeout(tick, interval);
    };
    pollTimer = setTimeout(tick, 0);
  }

  function stopPolling() {
    polling = false;
    clearTimeout(pollTimer);
  }

  function openStream() {
    if (stopped) return;
    if (!window.EventSource || !url) {
      setMode("polling");
      startPolling();
      return;
    }
    es = new EventSource(url);
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (err) {
          console.warn("fitscope stream: bad event", name, err);
          return;
        }
        try {
          fn(data);
        } catch (err) {
          console.warn("fitscope stream handler:", name, err);
        }
      });
    }
    es.onopen = () => {
      setMode("live");
      stopPolling();
      pollOnce(); // whatever arrived while the stream was down
    };
    es.onerror = () => {
      if (stopped) return;
      setMode("polling");
      startPolling();
      if (es.readyState === EventSource.CLOSED) {
        // refused for good (no such endpoint, or not an event stream): poll, retry later
        es = null;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(openStream, RETRY_STREAM_MS);
      }
    };
  }

  function stop() {
    stopped = true;
    stopPolling();
    clearTimeout(retryTimer);
    if (es) es.close();
    es = null;
    setMode("stopped");
  }

  openStream();
  return { stop, mode: () => mode, pollNow: pollOnce };
}

export { subscribe };
