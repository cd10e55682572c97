# Copyright (c) Facebook, Inc. and its affiliates.
