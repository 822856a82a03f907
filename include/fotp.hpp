/*
 * fotp: Flash OTP phone verification, C++17 wrapper of the C API (fotp.h). Header-only.
 *
 * Every C object is owned by a std::unique_ptr with its *_free deleter; every C error becomes a
 * fotp::Error exception carrying the kind (a FOTP_ERROR_* value), the platform's API code and
 * the HTTP status. Strings go in as std::string_view and come out as std::string (copies, so
 * they outlive the C object). Thread-safety is the C API's: a Client or Tracker may be used by
 * many threads at once, a Config may not.
 *
 *   fotp::Client client(fotp::Config::from_env());
 *   fotp::Verification v = client.verify("2");
 *   fotp::QueryResult r = client.wait(v.ft_token, std::chrono::seconds(120));
 *
 * Build: c++ -std=c++17 app.cpp $(pkg-config --cflags --libs fotp)
 *        or CMake: find_package(fotp) + target_link_libraries(app PRIVATE fotp::fotp)
 */
#ifndef FOTP_HPP
#define FOTP_HPP

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fotp.h"

namespace fotp {

/** Error kinds: the FOTP_ERROR_* values of fotp.h. */
enum class ErrorKind : int {
    InvalidArgument = FOTP_ERROR_INVALID_ARGUMENT,
    Config = FOTP_ERROR_CONFIG,
    Network = FOTP_ERROR_NETWORK,
    Timeout = FOTP_ERROR_TIMEOUT,
    HttpStatus = FOTP_ERROR_HTTP_STATUS,
    Api = FOTP_ERROR_API,
    Decode = FOTP_ERROR_DECODE,
    Exhausted = FOTP_ERROR_EXHAUSTED,
    Internal = FOTP_ERROR_INTERNAL,
};

/** An error of the library: what() is its message (never holds a secret or a code). */
class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string &message, std::string api_code = {},
          std::uint16_t http_status = 0)
        : std::runtime_error(message), kind_(kind), api_code_(std::move(api_code)),
          http_status_(http_status) {}

    /** The kind (compare with ErrorKind, or the FOTP_ERROR_* values as int). */
    ErrorKind kind() const noexcept { return kind_; }
    /** The platform's code for ErrorKind::Api errors, otherwise empty. */
    const std::string &api_code() const noexcept { return api_code_; }
    /** The HTTP status of the answer, 0 when there was none. */
    std::uint16_t http_status() const noexcept { return http_status_; }

  private:
    ErrorKind kind_;
    std::string api_code_;
    std::uint16_t http_status_;
};

namespace detail {

template <typename T, void (*Free)(T *)> struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};

using ErrorPtr = std::unique_ptr<fotp_error, Deleter<fotp_error, fotp_error_free>>;

inline std::string copy(const char *s) { return s ? std::string(s) : std::string(); }

/** Takes ownership of a returned error and throws it; does nothing for NULL (success). */
inline void check(fotp_error *raw) {
    if (raw == nullptr) {
        return;
    }
    ErrorPtr e(raw);
    throw Error(static_cast<ErrorKind>(fotp_error_kind(e.get())), copy(fotp_error_message(e.get())),
                copy(fotp_error_api_code(e.get())), fotp_error_http_status(e.get()));
}

/** The C API takes NUL-terminated strings: a view with a NUL inside would be cut short. */
inline std::string c_string(std::string_view s, const char *what) {
    if (s.find('\0') != std::string_view::npos) {
        throw Error(ErrorKind::InvalidArgument, std::string(what) + " contains a NUL character");
    }
    return std::string(s);
}

/** Milliseconds for the C API: negative is 0, more than UINT32_MAX is UINT32_MAX. */
template <typename Rep, typename Period>
std::uint32_t millis(std::chrono::duration<Rep, Period> d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms <= 0) {
        return 0;
    }
    constexpr auto max = std::numeric_limits<std::uint32_t>::max();
    return static_cast<unsigned long long>(ms) > max ? max : static_cast<std::uint32_t>(ms);
}

} // namespace detail

/** Owning handles of the C objects (for calling the C API directly next to the wrapper). */
using ConfigPtr = std::unique_ptr<fotp_config, detail::Deleter<fotp_config, fotp_config_free>>;
using ClientPtr = std::unique_ptr<fotp_client, detail::Deleter<fotp_client, fotp_client_free>>;
using VerificationPtr =
    std::unique_ptr<fotp_verification, detail::Deleter<fotp_verification, fotp_verification_free>>;
using QueryResultPtr =
    std::unique_ptr<fotp_query_result, detail::Deleter<fotp_query_result, fotp_query_result_free>>;
using CallbackPtr =
    std::unique_ptr<fotp_callback, detail::Deleter<fotp_callback, fotp_callback_free>>;
using TrackerPtr = std::unique_ptr<fotp_tracker, detail::Deleter<fotp_tracker, fotp_tracker_free>>;
using MatchPtr = std::unique_ptr<fotp_match, detail::Deleter<fotp_match, fotp_match_free>>;

/** The answer to verify: the link to open on the phone, the token, message id and code. */
struct Verification {
    std::string url;
    std::string ft_token;
    std::string message_id;
    std::string code;

    static Verification from(const fotp_verification *v) {
        return {detail::copy(fotp_verification_url(v)), detail::copy(fotp_verification_ft_token(v)),
                detail::copy(fotp_verification_message_id(v)),
                detail::copy(fotp_verification_code(v))};
    }
};

/** The result of query or wait. Fields the platform left out are empty. */
struct QueryResult {
    fotp_status status = FOTP_STATUS_UNKNOWN;
    std::string raw_status;
    std::string mobile;
    std::string sender;
    std::string send_time;
    std::string code;
    std::string deliver_time;

    bool success() const noexcept { return status == FOTP_STATUS_SUCCESS; }

    static QueryResult from(const fotp_query_result *r) {
        return {fotp_query_result_status(r),
                detail::copy(fotp_query_result_raw_status(r)),
                detail::copy(fotp_query_result_mobile(r)),
                detail::copy(fotp_query_result_sender(r)),
                detail::copy(fotp_query_result_send_time(r)),
                detail::copy(fotp_query_result_code(r)),
                detail::copy(fotp_query_result_deliver_time(r))};
    }
};

/** Base URL, credentials and limits; checked when a Client is built from it. */
class Config {
  public:
    /** An empty configuration (set at least the base URL and credentials). */
    Config() : p_(fotp_config_new()) {
        if (!p_) {
            throw Error(ErrorKind::Internal, "fotp_config_new returned NULL");
        }
    }

    /** Reads the FOTP_* environment variables (see fotp_config_from_env()). */
    static Config from_env() {
        fotp_config *raw = nullptr;
        detail::check(fotp_config_from_env(&raw));
        return Config(ConfigPtr(raw));
    }

    Config &base_url(std::string_view url) {
        detail::check(fotp_config_set_base_url(p_.get(), detail::c_string(url, "base URL").c_str()));
        return *this;
    }
    Config &hmac_auth(std::string_view app_id, std::string_view app_secret) {
        detail::check(fotp_config_set_hmac_auth(p_.get(),
                                                detail::c_string(app_id, "app id").c_str(),
                                                detail::c_string(app_secret, "app secret").c_str()));
        return *this;
    }
    Config &token_auth(std::string_view app_key, std::string_view token) {
        detail::check(fotp_config_set_token_auth(p_.get(),
                                                 detail::c_string(app_key, "app key").c_str(),
                                                 detail::c_string(token, "token").c_str()));
        return *this;
    }
    template <typename Rep, typename Period> Config &timeout(std::chrono::duration<Rep, Period> d) {
        fotp_config_set_timeout_ms(p_.get(), detail::millis(d));
        return *this;
    }
    Config &retries(std::uint32_t n) {
        fotp_config_set_retries(p_.get(), n);
        return *this;
    }
    Config &allow_insecure_http(bool allow) {
        fotp_config_set_allow_insecure_http(p_.get(), allow);
        return *this;
    }

    const fotp_config *get() const noexcept { return p_.get(); }
    fotp_config *get() noexcept { return p_.get(); }

  private:
    explicit Config(ConfigPtr p) : p_(std::move(p)) {}
    ConfigPtr p_;
};

/** A client of the platform (a connection pool); thread-safe. */
class Client {
  public:
    explicit Client(const Config &config) {
        fotp_client *raw = nullptr;
        detail::check(fotp_client_new(config.get(), &raw));
        p_.reset(raw);
    }

    /** Starts a verification with template ft_id; code empty = the platform picks one. */
    Verification verify(std::string_view ft_id, std::string_view code = {},
                        std::uint32_t validity_minutes = 0) const {
        const std::string id = detail::c_string(ft_id, "ft_id");
        const std::string c = detail::c_string(code, "code");
        fotp_verification *raw = nullptr;
        detail::check(fotp_verify(p_.get(), id.c_str(), c.empty() ? nullptr : c.c_str(),
                                  validity_minutes, &raw));
        VerificationPtr v(raw);
        return Verification::from(v.get());
    }

    /** Pulls the result of ft_token once. */
    QueryResult query(std::string_view ft_token) const {
        fotp_query_result *raw = nullptr;
        detail::check(
            fotp_query(p_.get(), detail::c_string(ft_token, "ft_token").c_str(), &raw));
        QueryResultPtr r(raw);
        return QueryResult::from(r.get());
    }

    /** Polls until the result is final or the time runs out (then Error of kind Timeout). */
    template <typename Rep, typename Period>
    QueryResult wait(std::string_view ft_token, std::chrono::duration<Rep, Period> limit) const {
        fotp_query_result *raw = nullptr;
        detail::check(fotp_wait(p_.get(), detail::c_string(ft_token, "ft_token").c_str(),
                                detail::millis(limit), &raw));
        QueryResultPtr r(raw);
        return QueryResult::from(r.get());
    }

    const fotp_client *get() const noexcept { return p_.get(); }

  private:
    ClientPtr p_;
};

/** A callback the platform pushed, parsed from the request body. Absent fields are empty. */
struct Callback {
    std::string mobile;
    std::string sender;
    std::string send_time;
    std::string code;
    std::string content;
    std::string deliver_time;
    std::string err;

    /** Parses a body (throws Error of kind Decode or InvalidArgument on a bad one). */
    static Callback parse(std::string_view body) {
        fotp_callback *raw = nullptr;
        detail::check(fotp_callback_parse(reinterpret_cast<const std::uint8_t *>(body.data()),
                                          body.size(), &raw));
        CallbackPtr cb(raw);
        return {detail::copy(fotp_callback_mobile(cb.get())),
                detail::copy(fotp_callback_sender(cb.get())),
                detail::copy(fotp_callback_send_time(cb.get())),
                detail::copy(fotp_callback_code(cb.get())),
                detail::copy(fotp_callback_content(cb.get())),
                detail::copy(fotp_callback_deliver_time(cb.get())),
                detail::copy(fotp_callback_err(cb.get()))};
    }
};

/** A verification a callback was matched to. */
struct Match {
    std::string ft_token;
    bool duplicate = false;
};

/** Push mode: unique live codes, exactly-once matching of callbacks, waiting for the result. */
class Tracker {
  public:
    /** A tracker kept in this process's memory. */
    static Tracker memory() {
        fotp_tracker *raw = fotp_tracker_new_memory();
        if (!raw) {
            throw Error(ErrorKind::Internal, "fotp_tracker_new_memory returned NULL");
        }
        return Tracker(TrackerPtr(raw));
    }

    /** A tracker shared through Redis by every process using the same url and namespace. */
    static Tracker redis(std::string_view url, std::string_view ns) {
        fotp_tracker *raw = nullptr;
        detail::check(fotp_tracker_new_redis(detail::c_string(url, "Redis URL").c_str(),
                                             detail::c_string(ns, "namespace").c_str(), &raw));
        return Tracker(TrackerPtr(raw));
    }

    /** Starts a verification whose code_length-digit code no other live one holds. */
    Verification verify(const Client &client, std::string_view ft_id, std::uint32_t code_length,
                        std::uint32_t validity_minutes = 0) const {
        fotp_verification *raw = nullptr;
        detail::check(fotp_tracker_verify(p_.get(), client.get(),
                                          detail::c_string(ft_id, "ft_id").c_str(), code_length,
                                          validity_minutes, &raw));
        VerificationPtr v(raw);
        return Verification::from(v.get());
    }

    /** The verification a callback belongs to, or nothing when none holds its code. */
    std::optional<Match> match(std::string_view callback_body) const {
        fotp_callback *cb_raw = nullptr;
        detail::check(fotp_callback_parse(
            reinterpret_cast<const std::uint8_t *>(callback_body.data()), callback_body.size(),
            &cb_raw));
        CallbackPtr cb(cb_raw);
        fotp_match *raw = nullptr;
        detail::check(fotp_tracker_match(p_.get(), cb.get(), &raw));
        if (!raw) {
            return std::nullopt;
        }
        MatchPtr m(raw);
        return Match{detail::copy(fotp_match_ft_token(m.get())), fotp_match_is_duplicate(m.get())};
    }

    /** Waits until the result of ft_token is known (pushed or pulled), or the time runs out. */
    template <typename Rep, typename Period>
    QueryResult wait(const Client &client, std::string_view ft_token,
                     std::chrono::duration<Rep, Period> limit) const {
        fotp_query_result *raw = nullptr;
        detail::check(fotp_tracker_wait(p_.get(), client.get(),
                                        detail::c_string(ft_token, "ft_token").c_str(),
                                        detail::millis(limit), &raw));
        QueryResultPtr r(raw);
        return QueryResult::from(r.get());
    }

    const fotp_tracker *get() const noexcept { return p_.get(); }

  private:
    explicit Tracker(TrackerPtr p) : p_(std::move(p)) {}
    TrackerPtr p_;
};

} // namespace fotp

#endif /* FOTP_HPP */
