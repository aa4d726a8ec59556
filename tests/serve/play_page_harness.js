// Runs the script of camworld's play page (camworld/serve/static/play.html) in node against a live `camworld serve`,
// with the few browser objects it touches stubbed: start a session, hold "w" until one step's frames arrive, play
// them, release, and print what the page showed as JSON.
//
//   node play_page_harness.js PAGE.html http://127.0.0.1:PORT
const fs = require("fs");
const vm = require("vm");

const [page, base] = process.argv.slice(2);
const script = fs.readFileSync(page, "utf8").match(/<script>([\s\S]*)<\/script>/)[1];

function element(fields) {
  const handlers = {};
  return {
    ...fields,
    textContent: "",
    addEventListener: (type, fn) => { handlers[type] = fn; },
    fire: (type, event) => handlers[type](event),
  };
}

const draws = [];
const canvas = element({width: 512, height: 288});
canvas.getContext = () => ({
  imageSmoothingEnabled: true,
  drawImage(image, x, y, w, h) { draws.push({src: image.src.slice(0, 22), w, h, smooth: this.imageSmoothingEnabled}); },
});
const elements = {
  view: canvas, status: element({}), video: element({href: "#"}), start: element({}),
  world: element({value: "10003"}), seed: element({value: "5"}),
};
const windowHandlers = {};
const steps = [];

class FakeImage {
  set src(value) { this._src = value; setTimeout(() => this.onload && this.onload(), 0); }
  get src() { return this._src; }
}

const context = vm.createContext({
  document: {getElementById: (id) => elements[id]},
  addEventListener: (type, fn) => { windowHandlers[type] = fn; },
  fetch: (url, options) => { if (url.endsWith("/step")) steps.push(url); return fetch(base + url, options); },
  Image: FakeImage,
  setTimeout, setInterval, JSON, Number, Error, console,
});
vm.runInContext(script, context);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(test, what) {
  for (let i = 0; i < 1200; i++) {
    if (test()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; status: ${elements.status.textContent}`);
}

(async () => {
  elements.start.fire("submit", {preventDefault() {}});
  await until(() => elements.status.textContent === "hold a key", "the session");
  // the page sets the status right after it asks for the first frame, which is drawn once the image has loaded
  await until(() => draws.length >= 1, "the first frame");
  const afterStart = draws.length;
  windowHandlers.keydown({key: "W"});
  await until(() => elements.status.textContent.startsWith("keys"), "a step");
  windowHandlers.keyup({key: "W"});
  const stepStatus = elements.status.textContent;
  await until(() => draws.length >= afterStart + 13, "the step's frames to play");
  await sleep(2000);  // a step that started before the key came up ends; none may start after it
  const stepsAfterRelease = steps.length;
  await sleep(500);
  console.log(JSON.stringify({
    stepStatus, draws: draws.length, afterStart, canvas: [canvas.width, canvas.height], steps: steps.length,
    stepsAfterRelease,
    video: elements.video.href, first: draws[0], last: draws[draws.length - 1],
  }));
  process.exit(0);
})().catch((err) => { console.error(err.message); process.exit(1); });
