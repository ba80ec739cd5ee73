// The time machine bar: the emulator's clock in the account's time zone, +1h / +1d and a jump
// to a date and time. Disabled, with a note, when the emulator runs on the real clock.
import { errorText, getJSON, postJSON } from "./api.js";
import { byTestId } from "./dom.js";

let clock = null;
let dirty = false;

/** The clock's local time `YYYY-MM-DDTHH:MM` (account time zone), or null before the first read. */
export function localNow() {
  return clock ? clock.local : null;
}

function show(next) {
  clock = next;
  const display = byTestId("clock-display");
  display.textContent = `${next.local.replace("T", " ")} (${next.timezone})`;
  display.dataset.local = next.local;
  display.title = `UTC ${next.now}`;
  const disabled = !next.movable;
  for (const id of ["clock-plus-hour", "clock-plus-day", "clock-to-input", "clock-to-submit"]) {
    byTestId(id).disabled = disabled;
  }
  const note = byTestId("clock-note");
  note.hidden = !disabled;
  note.textContent = disabled ? "実際の時計で動いているため、時間は動かせません" : "";
  const input = byTestId("clock-to-input");
  if (!dirty && document.activeElement !== input) {
    input.min = next.local;
    input.value = next.local;
  }
}

export async function refreshClock() {
  const answer = await getJSON("/_emulator/clock");
  if (answer.ok) show(answer.body);
  return answer;
}

export function initTimeMachine({ onMoved, onError }) {
  async function move(payload) {
    const answer = await postJSON("/_emulator/clock", payload);
    if (!answer.ok) {
      onError(`時間を動かせません: ${errorText(answer)}`);
      return;
    }
    show(answer.body);
    if (answer.body.on_clock_change === "failed") {
      onError(`時間を進めた後の処理でエラー: ${answer.body.on_clock_change_error}`);
    }
    await onMoved(answer.body);
  }
  for (const id of ["clock-plus-hour", "clock-plus-day"]) {
    const button = byTestId(id);
    button.addEventListener("click", () => move({ advance: button.dataset.advance }));
  }
  const input = byTestId("clock-to-input");
  input.addEventListener("input", () => {
    dirty = true;
  });
  byTestId("clock-jump-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!input.value) return;
    await move({ to: input.value.slice(0, 16) });
    dirty = false;
  });
}
