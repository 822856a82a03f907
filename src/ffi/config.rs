//! `fotp_config`: a configuration builder.

use std::ffi::c_char;
use std::time::Duration;

use super::{boundary, free_box, try_mut, try_opt_str, try_out, try_str, FfiResult};
use crate::config::ConfigBuilder;

/// A configuration builder (base URL, credentials, limits). Nothing is checked until
/// fotp_client_new().
///
/// Created by fotp_config_new() or fotp_config_from_env(), owned by the caller, freed with
/// fotp_config_free(). Not synchronised: do not change it while another thread uses it.
pub struct fotp_config {
    builder: ConfigBuilder,
}

impl fotp_config {
    /// Applies a setter to a copy, so that a setter that panics (caught by `boundary()`)
    /// leaves the config as it was, as the header promises ("c is unchanged").
    pub(crate) fn update(&mut self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) {
        self.builder = f(self.builder.clone());
    }

    pub(crate) fn builder(&self) -> &ConfigBuilder {
        &self.builder
    }
}

/// A new, empty configuration: no base URL, no credentials, default limits (timeout 10 s,
/// connect timeout 3 s, 2 retries), User-Agent `fotp/<version> c`.
///
/// Owned by the caller: free with fotp_config_free(). Returns NULL only if the library hit an
/// internal error. Thread-safe.
#[no_mangle]
pub extern "C" fn fotp_config_new() -> *mut fotp_config {
    boundary(|| {
        Box::into_raw(Box::new(fotp_config {
            builder: ConfigBuilder::new().user_agent_suffix("c"),
        }))
    })
}

/// A configuration read from the FOTP_* environment variables (FOTP_BASE_URL, FOTP_AUTH,
/// FOTP_APP_ID, FOTP_APP_SECRET, FOTP_APP_KEY, FOTP_TOKEN, FOTP_TIMEOUT_MS,
/// FOTP_CONNECT_TIMEOUT_MS, FOTP_RETRIES, FOTP_ALLOW_INSECURE_HTTP, FOTP_CA_BUNDLE).
///
/// On success writes a new configuration to `*out` (owned by the caller, free with
/// fotp_config_free()) and returns NULL. A variable that does not parse is a FOTP_ERROR_CONFIG
/// error; missing ones are only reported by fotp_client_new(). `*out` is untouched on failure.
/// Thread-safe (but races with threads that change the environment, as getenv does).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_from_env(
    out: *mut *mut fotp_config,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        let out = try_out(out, "out")?;
        let builder = ConfigBuilder::from_env()?.user_agent_suffix("c");
        let c = Box::into_raw(Box::new(fotp_config { builder }));
        // SAFETY: checked non-NULL; the caller provides a writable pointer.
        unsafe { out.write(c) };
        Ok(())
    })
}

/// Sets the platform's base URL, e.g. `https://otp.example.com/otp-api` (checked by
/// fotp_client_new(): https://, or http:// to a loopback host unless insecure HTTP is allowed).
///
/// `url` is copied. Returns NULL on success, an owned FOTP_ERROR_INVALID_ARGUMENT error when
/// `c` or `url` is NULL or `url` is not UTF-8 (then `c` is unchanged).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_base_url(
    c: *mut fotp_config,
    url: *const c_char,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (c, url) = unsafe { (try_mut(c, "c")?, try_str(url, "url")?) };
        c.update(|b| b.base_url(url));
        Ok(())
    })
}

/// Authenticates with the "hmac-sha256" scheme (replaces any earlier credentials).
///
/// Both strings are copied; the secret is never shown in messages. Returns NULL on success, an
/// owned FOTP_ERROR_INVALID_ARGUMENT error when an argument is NULL or not UTF-8 (then `c` is
/// unchanged). Empty or malformed values are reported by fotp_client_new().
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_hmac_auth(
    c: *mut fotp_config,
    app_id: *const c_char,
    app_secret: *const c_char,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (c, id, secret) = unsafe {
            (
                try_mut(c, "c")?,
                try_str(app_id, "app_id")?,
                try_str(app_secret, "app_secret")?,
            )
        };
        c.update(|b| b.hmac_auth(id, secret));
        Ok(())
    })
}

/// Authenticates with the "token" scheme: headers AppKey and Authorization (replaces any
/// earlier credentials).
///
/// Both strings are copied; the token is never shown in messages. Returns NULL on success, an
/// owned FOTP_ERROR_INVALID_ARGUMENT error when an argument is NULL or not UTF-8 (then `c` is
/// unchanged).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_token_auth(
    c: *mut fotp_config,
    app_key: *const c_char,
    token: *const c_char,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (c, key, token) = unsafe {
            (
                try_mut(c, "c")?,
                try_str(app_key, "app_key")?,
                try_str(token, "token")?,
            )
        };
        c.update(|b| b.token_auth(key, token));
        Ok(())
    })
}

/// Appends `suffix` to the User-Agent, which becomes `fotp/<version> <suffix>` (replaces the
/// default "c"; bindings set e.g. "python/3.11"). Visible ASCII, checked by fotp_client_new().
///
/// `suffix` is copied. Returns NULL on success, an owned FOTP_ERROR_INVALID_ARGUMENT error when
/// an argument is NULL or not UTF-8 (then `c` is unchanged).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_user_agent_suffix(
    c: *mut fotp_config,
    suffix: *const c_char,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (c, suffix) = unsafe { (try_mut(c, "c")?, try_str(suffix, "suffix")?) };
        c.update(|b| b.user_agent_suffix(suffix));
        Ok(())
    })
}

/// Sets the time limit of each attempt in milliseconds, connecting included (default 10000).
///
/// A query attempt that runs out of time is retried like any transient failure (verify only
/// when its request surely never reached the server). Without a call bound
/// (fotp_config_set_call_timeout_ms()), a call never runs longer than (retries + 1) x this
/// limit plus the pauses between attempts. 0 is refused by fotp_client_new(). Does nothing
/// when `c` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_timeout_ms(c: *mut fotp_config, ms: u32) {
    boundary(|| {
        // SAFETY: NULL or a live config (caller's contract).
        if let Some(c) = unsafe { c.as_mut() } {
            c.update(|b| b.timeout(Duration::from_millis(ms.into())));
        }
    })
}

/// Sets the time limit of a whole call in milliseconds: every attempt and pause (for
/// fotp_wait(), the smaller of this and its own limit). 0 means no bound beyond
/// (retries + 1) x the attempt limit plus the pauses (the default). When it runs out, the call
/// fails with FOTP_ERROR_TIMEOUT. Does nothing when `c` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_call_timeout_ms(c: *mut fotp_config, ms: u32) {
    boundary(|| {
        // SAFETY: NULL or a live config (caller's contract).
        if let Some(c) = unsafe { c.as_mut() } {
            c.update(|b| b.call_timeout(Duration::from_millis(ms.into())));
        }
    })
}

/// Trusts the root certificates of the PEM file at `pem_path` in addition to the built-in
/// (Mozilla) roots, for clients built from `c` only (replaces FOTP_CA_BUNDLE and any earlier
/// bundle of `c`).
///
/// The file is read now; later changes to it do not matter. Returns NULL on success; an owned
/// FOTP_ERROR_CONFIG error naming the problem when the file cannot be read, is not PEM or holds
/// no certificate; FOTP_ERROR_INVALID_ARGUMENT when an argument is NULL or `pem_path` is not
/// UTF-8. `c` is unchanged on failure. `pem_path` is not kept.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_ca_bundle(
    c: *mut fotp_config,
    pem_path: *const c_char,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (c, path) = unsafe { (try_mut(c, "c")?, try_str(pem_path, "pem_path")?) };
        let loaded = c.builder.clone().load_ca_bundle(path)?;
        c.builder = loaded;
        Ok(())
    })
}

/// Sets the proxy of clients built from `c`: `proxy_url` is an http:// or https:// CONNECT
/// proxy (e.g. `http://user:pw@proxy:3128`) used for every request, a loopback base URL
/// included; NULL means no proxy at all. When this is never called, the environment decides
/// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; never for a loopback base URL).
///
/// `proxy_url` is copied. Returns NULL on success; an owned FOTP_ERROR_CONFIG error when the
/// URL does not parse or is not http(s)://; FOTP_ERROR_INVALID_ARGUMENT when `c` is NULL or
/// `proxy_url` is not UTF-8. `c` is unchanged on failure.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_proxy(
    c: *mut fotp_config,
    proxy_url: *const c_char,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (c, url) = unsafe { (try_mut(c, "c")?, try_opt_str(proxy_url, "proxy_url")?) };
        match url {
            Some(url) => {
                crate::config::check_proxy(url)?;
                c.update(|b| b.proxy(url));
            }
            None => c.update(|b| b.no_proxy()),
        }
        Ok(())
    })
}

/// Sets the time limit to open a connection in milliseconds (default 3000). 0 is refused by
/// fotp_client_new(). Does nothing when `c` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_connect_timeout_ms(c: *mut fotp_config, ms: u32) {
    boundary(|| {
        // SAFETY: NULL or a live config (caller's contract).
        if let Some(c) = unsafe { c.as_mut() } {
            c.update(|b| b.connect_timeout(Duration::from_millis(ms.into())));
        }
    })
}

/// Sets how many times a failed request may be retried after the first attempt (default 2).
/// Does nothing when `c` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_retries(c: *mut fotp_config, n: u32) {
    boundary(|| {
        // SAFETY: NULL or a live config (caller's contract).
        if let Some(c) = unsafe { c.as_mut() } {
            c.update(|b| b.retries(n));
        }
    })
}

/// Allows plain http:// to hosts that are not loopback (default false). Does nothing when `c`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn fotp_config_set_allow_insecure_http(c: *mut fotp_config, allow: bool) {
    boundary(|| {
        // SAFETY: NULL or a live config (caller's contract).
        if let Some(c) = unsafe { c.as_mut() } {
            c.update(|b| b.allow_insecure_http(allow));
        }
    })
}

/// Frees a configuration. NULL is a no-op. Clients built from it are not affected.
#[no_mangle]
pub unsafe extern "C" fn fotp_config_free(c: *mut fotp_config) {
    boundary(|| {
        // SAFETY: NULL or a config from this library not yet freed (caller's contract).
        unsafe { free_box(c) }
    })
}
