//! A real browser for the status page's tests: Debian's `chromium`, headless, driven through
//! `chromedriver` with the W3C WebDriver protocol (a few JSON calls over HTTP, made with the tests'
//! blocking HTTP client). `.ci/run` installs both; without them the tests say so and skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser is installed; prints why not when it is not.
pub fn available(test: &str) -> bool {
    let there = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !there {
        eprintln!(
            "SKIPPED {test}: {CHROMIUM} and {CHROMEDRIVER} are needed \
             (apt-get install chromium chromium-driver; .ci/run installs them)"
        );
    }
    there
}

/// The chromedriver process, killed when dropped (also when the session could not be made).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A chromedriver process with one headless chromium session; both end when dropped.
pub struct Browser {
    base: String,
    session: String,
    client: reqwest::blocking::Client,
    // Dropped after the session is deleted (fields drop in order, after `drop` below).
    _driver: Driver,
    _profile: super::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless chromium with a window of `width` x `height` CSS
    /// pixels, showing times in the time zone `zone` (IANA name).
    pub fn start(width: u32, height: u32, zone: &str) -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Driver(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        super::eventually(Duration::from_secs(30), "chromedriver to answer", || {
            let status: Value = client.get(format!("{base}/status")).send().ok()?.json().ok()?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        });
        let profile = super::TempDir::new("chromium-profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            "--lang=en-GB",
            "--force-device-scale-factor=1",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.0.display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let answer: Value =
            client.post(format!("{base}/session")).json(&capabilities).send().unwrap().json().unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        let browser = Browser { base, session, client, _driver: driver, _profile: profile };
        // The zone the page's clock shows.
        browser.cdp("Emulation.setTimezoneOverride", json!({ "timezoneId": zone }));
        browser
    }

    /// A command of Chrome's own protocol (DevTools), through chromedriver.
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(reqwest::Method::POST, "/goog/cdp/execute", Some(json!({ "cmd": cmd, "params": params })))
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.client.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().unwrap().json().unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    /// Sets the window's size in CSS pixels.
    pub fn size(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({ "width": width, "height": height })));
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub fn js(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    /// The trimmed text of every element `css` selects.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let script = format!("return [...document.querySelectorAll({css:?})].map(e => e.textContent.trim())");
        let found = self.js(&script);
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    /// Whether something matches `css`.
    pub fn has(&self, css: &str) -> bool {
        self.js(&format!("return document.querySelector({css:?}) !== null")) == Value::Bool(true)
    }

    /// Waits until `script` returns something other than `null`/`false`, and returns it.
    pub fn wait(&self, timeout: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.js(script);
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText");
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the page says:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until something matches `css`.
    pub fn wait_for(&self, timeout: Duration, what: &str, css: &str) {
        self.wait(timeout, what, &format!("return document.querySelector({css:?}) !== null"));
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    /// Clicks the element `css` selects, as a user would.
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Types `text` into the element `css` selects.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    /// A screenshot of the whole page (beyond the window's height), as PNG, written to `path`
    /// (its folder is created).
    pub fn screenshot(&self, path: &Path) -> PathBuf {
        let png =
            self.cdp("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
        let data = png["data"].as_str().unwrap_or_else(|| panic!("a screenshot: {png}"));
        let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        eprintln!("screenshot: {}", path.display());
        path.to_path_buf()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.client.delete(url).send();
    }
}

/// Where a test's screenshots go: under the target directory (`target/tmp/status-page/`), kept
/// after the test.
pub fn output(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page").join(name)
}
