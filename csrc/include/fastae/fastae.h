// fastae/fastae.h -- the umbrella header: include this to use fastae from C++.
#pragma once

#include "fastae/config.h"
#include "fastae/layout.h"
#include "fastae/model.h"
#include "fastae/version.h"
