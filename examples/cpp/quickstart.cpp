// fotp quickstart in C++17 (pull mode) with the header-only wrapper fotp.hpp: start a
// verification, show the link and the code, wait for the user's SMS, print the result.
//
// Configuration comes from the environment (FOTP_BASE_URL, FOTP_APP_ID, FOTP_APP_SECRET, ...):
//
//   fotp sandbox --addr 127.0.0.1:8788 &      # prints FOTP_BASE_URL=... and the credentials
//   c++ -std=c++17 quickstart.cpp $(pkg-config --cflags --libs fotp) -o quickstart
//   ./quickstart [FT_ID] [WAIT_SECONDS]         # default template "2", 120 s
//
// Exit status: 0 verified, 1 the verification failed or timed out, 2 any other error.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include <fotp.hpp>

int main(int argc, char **argv) {
    const std::string ft_id = argc > 1 ? argv[1] : "2";
    const long wait_seconds = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 120;
    if (wait_seconds < 1 || wait_seconds > 3600) {
        std::cerr << "quickstart: WAIT_SECONDS must be 1-3600\n";
        return 2;
    }
    std::cout << "fotp " << FOTP_VERSION << std::endl;
    try {
        const fotp::Client client(fotp::Config::from_env());
        const fotp::Verification v = client.verify(ft_id);
        std::cout << "open this link on the phone: " << v.url << "\n"
                  << "code: " << v.code << "\n"
                  << "ft_token: " << v.ft_token << "\n"
                  << "waiting up to " << wait_seconds << " s for the SMS..." << std::endl;
        const fotp::QueryResult r = client.wait(v.ft_token, std::chrono::seconds(wait_seconds));
        switch (r.status) {
        case FOTP_STATUS_SUCCESS:
            std::cout << "status: success (mobile " << r.mobile << ", code " << r.code << ", sent "
                      << r.send_time << ")" << std::endl;
            return 0;
        case FOTP_STATUS_FAILED:
            std::cout << "status: failed" << std::endl;
            return 1;
        default:
            std::cout << "status: unknown (" << r.raw_status << ")" << std::endl;
            return 1;
        }
    } catch (const fotp::Error &e) {
        std::cerr << "quickstart: " << e.what() << " (kind " << static_cast<int>(e.kind());
        if (!e.api_code().empty()) {
            std::cerr << ", platform code " << e.api_code();
        }
        if (e.http_status() != 0) {
            std::cerr << ", HTTP " << e.http_status();
        }
        std::cerr << ")\n";
        return e.kind() == fotp::ErrorKind::Timeout ? 1 : 2;
    }
}
