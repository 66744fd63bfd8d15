// fastae/fastae.h -- the umbrella header: include this to use fastae from C++.
#pragma once

#include "fastae/autoencoder.h"
#include "fastae/config.h"
#include "fastae/cpus.h"
#include "fastae/layout.h"
#include "fastae/machine.h"
#include "fastae/model.h"
#include "fastae/model_file.h"
#include "fastae/training.h"
#include "fastae/version.h"
#include "fastae/vocabulary.h"
