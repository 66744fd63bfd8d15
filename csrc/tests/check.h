// check.h -- the smallest test harness: TEST(name) registers a function, CHECK* record failures
// with file and line, main() runs every test (printing its time) and returns non-zero if any
// check failed; contains and invalid_argument_of help check error messages.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastae_test {

struct Registry {
    std::vector<std::pair<std::string, std::function<void()>>> tests;
    int failures = 0;
    static Registry& get() {
        static Registry r;
        return r;
    }
};

struct Register {
    Register(const char* name, std::function<void()> fn) { Registry::get().tests.emplace_back(name, std::move(fn)); }
};

inline void fail(const char* file, int line, const std::string& what) {
    ++Registry::get().failures;
    std::printf("  FAILED %s:%d: %s\n", file, line, what.c_str());
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The message of the exception of type Error that `call` throws, or "" if it throws nothing
// (an exception of another type propagates).
template <typename Error, typename Call>
std::string message_of(Call&& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

template <typename Call>
std::string invalid_argument_of(Call&& call) {
    return message_of<std::invalid_argument>(call);
}

}  // namespace fastae_test

#define TEST(name)                                                             \
    static void name();                                                        \
    static fastae_test::Register register_##name(#name, name);                 \
    static void name()

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) fastae_test::fail(__FILE__, __LINE__, #cond);             \
    } while (0)

// cond, naming on failure which case (`what`, a string) the check belongs to.
#define CHECK_IN(cond, what)                                                   \
    do {                                                                       \
        if (!(cond)) fastae_test::fail(__FILE__, __LINE__, std::string(#cond) + " [" + (what) + "]"); \
    } while (0)

// |a - b| <= tol, printing both values on failure.
#define CHECK_NEAR(a, b, tol)                                                  \
    do {                                                                       \
        const double a_ = (a), b_ = (b), t_ = (tol);                           \
        if (!(std::fabs(a_ - b_) <= t_)) {                                     \
            fastae_test::fail(__FILE__, __LINE__,                              \
                              std::string(#a " = ") + std::to_string(a_) +     \
                                  ", " #b " = " + std::to_string(b_) +         \
                                  ", tol " + std::to_string(t_));              \
        }                                                                      \
    } while (0)

#define CHECK_THROWS(expr, Exception)                                          \
    do {                                                                       \
        bool thrown_ = false;                                                  \
        try {                                                                  \
            (void)(expr);                                                      \
        } catch (const Exception&) {                                           \
            thrown_ = true;                                                    \
        } catch (...) {                                                        \
        }                                                                      \
        if (!thrown_) fastae_test::fail(__FILE__, __LINE__, #expr " did not throw " #Exception); \
    } while (0)

int main() {
    auto& r = fastae_test::Registry::get();
    for (auto& [name, fn] : r.tests) {
        const int before = r.failures;
        const auto start = std::chrono::steady_clock::now();
        try {
            fn();
        } catch (const std::exception& e) {
            fastae_test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        std::printf("%s %s (%.0f ms)\n", r.failures == before ? "ok  " : "FAIL", name.c_str(), ms);
        std::fflush(stdout);
    }
    std::printf("%zu tests, %d failed checks\n", r.tests.size(), r.failures);
    return r.failures == 0 ? 0 : 1;
}
