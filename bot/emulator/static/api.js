// JSON over fetch, never throwing for an HTTP error: {ok, status, body} (status 0 = no answer).

async function call(url, options) {
  try {
    const response = await fetch(url, { cache: "no-store", ...options });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return { ok: response.ok, status: response.status, body };
  } catch (error) {
    return { ok: false, status: 0, body: { error: String(error) } };
  }
}

export function getJSON(url) {
  return call(url, { method: "GET" });
}

export function postJSON(url, payload = {}) {
  return call(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

export function errorText(answer) {
  const body = answer.body || {};
  return body.error || body.message || (answer.status ? `HTTP ${answer.status}` : "接続できません");
}
