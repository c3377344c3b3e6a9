/* Door check-in (dashboards/door.py): each scan's nonce, and the camera. The QR decoder,
   @zxing/browser (vendor/, pinned by dashboards/package-lock.json), is loaded only when the
   camera starts, from this server: the CSP's script-src 'self' allows it, no eval needed. */
(function () {
  "use strict";
  const here = document.currentScript ? document.currentScript.src : window.location.href;
  const SCANNER = new URL("vendor/zxing-browser.min.js", here).href;
  // A code still in front of the camera is one scan: it counts again only after this long away.
  const AWAY_MS = 3000;
  let loading = null;
  let controls = null;
  let last = { code: null, at: 0 };

  function nonce() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    // Outside a secure context (plain http on a LAN address) randomUUID is missing.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  function scan(code) {
    return { code: code.trim(), nonce: nonce() };
  }

  function setProps(id, props) {
    window.dash_clientside.set_props(id, props);
  }

  function showing(on) {
    setProps("door-video", { style: on ? {} : { display: "none" } });
    setProps("door-camera-start", { style: on ? { display: "none" } : {} });
    setProps("door-camera-stop", { style: on ? {} : { display: "none" } });
  }

  function loadScanner() {
    if (window.ZXingBrowser) return Promise.resolve(window.ZXingBrowser);
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = SCANNER;
        script.onload = () => resolve(window.ZXingBrowser);
        script.onerror = () => {
          loading = null;
          reject(new Error("the QR decoder did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function stop() {
    if (controls) controls.stop();
    controls = null;
  }

  async function start() {
    const media = navigator.mediaDevices;
    if (!media || !media.getUserMedia) {
      return "No camera here: browsers allow one on https (or localhost) only. Type the code.";
    }
    const ZX = await loadScanner();
    const video = document.getElementById("door-video");
    const reader = new ZX.BrowserQRCodeReader();
    stop();
    controls = await reader.decodeFromConstraints(
      { video: { facingMode: "environment" } },
      video,
      (result) => {
        if (!video.isConnected) {
          stop(); // the page was left: release the camera
          return;
        }
        if (!result) return;
        const code = result.getText();
        const now = Date.now();
        const same = code === last.code && now - last.at < AWAY_MS;
        last = { code, at: now };
        if (!same) setProps("door-scan", { data: scan(code) });
      }
    );
    showing(true);
    return "Camera on: hold a ticket's QR code in the frame.";
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.door = {
    /* The typed code (Enter or the button): a scan with a fresh nonce; the field empties. */
    typed: function (_submits, _clicks, value) {
      const nu = window.dash_clientside.no_update;
      if (!value || !value.trim()) return [nu, nu];
      return [scan(value), ""];
    },
    /* Start or stop the camera; its state in words. */
    camera: function () {
      const ctx = window.dash_clientside.callback_context;
      const which = ctx.triggered.length ? ctx.triggered[0].prop_id.split(".")[0] : "";
      if (which === "door-camera-stop") {
        stop();
        showing(false);
        return "Camera off.";
      }
      start()
        .then((text) => setProps("door-camera-status", { children: text }))
        .catch((err) => {
          stop();
          showing(false);
          const denied = err && err.name === "NotAllowedError";
          setProps("door-camera-status", {
            children: denied
              ? "The camera was not allowed: allow it in the browser, or type the code."
              : `No camera: ${err && err.message ? err.message : err}. Type the code.`,
          });
        });
      return "Starting the camera…";
    },
  };
})();
