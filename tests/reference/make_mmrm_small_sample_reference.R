#!/usr/bin/env Rscript
# Writes tests/reference/mmrm_small_sample_reference.hpp: the MMRM's small-sample inference on
# patient-level fixture trials, computed by R, for tests/unit/test_mmrm.cpp:
#
#  * the REML fit of nlme::gls with an unstructured covariance (corSymm + varIdent), polished
#    to the maximum by Fisher scoring on dense matrices (as make_mmrm_reference.R does);
#  * Kenward & Roger (Biometrics 1997): the adjusted covariance Phi_A, its SE for the effect,
#    and their df m and F scaling lambda, with theta = the unique elements of Sigma (V linear
#    in theta, so their R_ij term is zero) and W = inverse expected REML information;
#  * Satterthwaite df with the observed REML information (analytical Hessian) and with the
#    expected information.
#
# Why a dense implementation here rather than a package: pbkrtest's KRmodcomp/get_SigmaG only
# take lme4 fits, and lme4 cannot fit an unstructured residual covariance (a random
# unstructured visit effect plus a residual variance is not identified); emmeans offers no
# Kenward-Roger mode for gls. So the KR numbers are computed twice from the same V and dV_k:
# by this script's own code, written from the paper's formulas (general l, then l = 1), and by
# pbkrtest's internal routines vcovAdj_internal() and .KR_adjust() (the ones KRmodcomp runs on
# an lme4 fit) given the gls model's V and dV_k; they must agree to 1e-9.
#
# Conventions (compare like with like):
#  * pbkrtest takes W = 2 IE2^-1 with IE2_kl = tr(P dV_k P dV_l), i.e. the inverse of the
#    expected information I_kl = tr(P dV_k P dV_l) / 2, and uses the unadjusted Phi in Theta;
#    for one contrast its ddf is 2 (c' Phi c)^2 / (g' I^-1 g), the expected-information
#    Satterthwaite df, and its F.scaling is 1. The test statistic uses Phi_A.
#  * emmeans' "satterthwaite" mode for gls uses gls's apVar (inverse of a numerical Hessian in
#    gls's unconstrained parametrization) at gls's own, slightly unconverged, optimum and
#    numerical gradients: it approximates the observed-information df, not the expected one.
#    It is printed (and written in a comment) as a cross-check only.
#  * R's mmrm package (not in Debian) takes W from the observed Hessian in its own
#    parametrization; its Kenward-Roger numbers are therefore not the ones written here.
#
# Run from the repository root (CI does not need R: the header is committed):
#   apt-get update
#   DEBIAN_FRONTEND=noninteractive apt-get install -y r-base-core r-cran-nlme r-cran-pbkrtest r-cran-emmeans
#   Rscript tests/reference/make_mmrm_small_sample_reference.R
#
# The fixtures are trialsim patients CSVs kept in the repository (tests/reference/fixtures/),
# so the references do not change when the simulator does. trial_a/b/c (two post-baseline
# visits) are make_mmrm_reference.R's; the four-visit ones were written by
#   M='trial.months=[0,3,6,9,12]'
#   build/trialsim run configs/null_trial.toml --seed 41 --replicate 2 --set trial.consented=66 \
#     --set "$M" --patients-csv tests/reference/fixtures/small_monotone.csv --quiet
#   build/trialsim run configs/null_trial.toml --seed 43 --replicate 5 --set trial.consented=66 \
#     --set "$M" --set measurement.missed_visit_prob=0.2 \
#     --patients-csv tests/reference/fixtures/small_intermittent.csv --quiet
#   build/trialsim run configs/null_trial.toml --seed 47 --replicate 1 --set trial.consented=34 \
#     --set "$M" --set measurement.missed_visit_prob=0.1 \
#     --patients-csv tests/reference/fixtures/tiny_intermittent.csv --quiet
#   build/trialsim run configs/seed_trial.toml --seed 53 --replicate 4 --set "$M" \
#     --set measurement.missed_visit_prob=0.1 --set dropout.spp_hazard_ratio_per_10=2.0 \
#     --set dropout.death_per_year=0.3 --set 'dropout.hazard_depends_on="observed_spp"' \
#     --patients-csv tests/reference/fixtures/mar_dropout.csv --quiet
#
# Every number written to the header is printed with 17 significant digits.

suppressPackageStartupMessages({
  library(nlme)
  library(Matrix)
  library(pbkrtest)
  library(emmeans)
})

script_dir <- local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(file_arg) == 1) dirname(normalizePath(sub("^--file=", "", file_arg)))
  else file.path("tests", "reference")
})
fixture_dir <- file.path(script_dir, "fixtures")
output <- file.path(script_dir, "mmrm_small_sample_reference.hpp")

fixtures <- list(
  list(name = "trial_a", file = "trial_a.csv", about = "2 visits, seed trial, missed_visit_prob 0.15"),
  list(name = "trial_b", file = "trial_b.csv", about = "2 visits, seed trial, missed_visit_prob 0.15"),
  list(name = "trial_c", file = "trial_c.csv",
       about = "2 visits, seed trial, missed_visit_prob 0.15, heavier informative dropout"),
  list(name = "small_monotone", file = "small_monotone.csv",
       about = "4 visits, null trial, 66 consented, monotone dropout only"),
  list(name = "small_intermittent", file = "small_intermittent.csv",
       about = "4 visits, null trial, 66 consented, missed_visit_prob 0.2 (intermittent and monotone)"),
  list(name = "tiny_intermittent", file = "tiny_intermittent.csv",
       about = "4 visits, null trial, 34 consented, missed_visit_prob 0.1"),
  list(name = "mar_dropout", file = "mar_dropout.csv",
       about = "4 visits, seed trial, dropout on observed SPP (MAR), missed_visit_prob 0.1")
)

fail <- function(...) stop(sprintf(...), call. = FALSE)
relerr <- function(a, b) max(abs(a - b) / pmax(abs(b), .Machine$double.xmin))
check_close <- function(a, b, what, rtol) {
  rel <- relerr(a, b)
  if (!is.finite(rel) || rel > rtol) fail("%s: relative difference %.3g > %.3g", what, rel, rtol)
  rel
}
fmt <- function(x) {
  s <- ifelse(is.na(x), "kMissing", sprintf("%.17g", x))
  ifelse(is.na(x) | grepl("[.eninf]", s), s, paste0(s, ".0"))
}

# ---------------------------------------------------------------------------------------------
# Data: randomized patients in file order; visits are the observed_spp_m<month> columns after
# month 0 (the baseline).

read_fixture <- function(path) {
  d <- read.csv(path, stringsAsFactors = FALSE, na.strings = "")
  d <- d[d$status == "randomized", ]
  if (!all(d$arm %in% c("treatment", "control"))) fail("%s: unexpected arm", path)
  if (!all(d$stratum %in% c("diabetes", "no_diabetes"))) fail("%s: unexpected stratum", path)
  if (anyNA(d$observed_spp_m0)) fail("%s: randomized patient without a baseline", path)
  cols <- grep("^observed_spp_m", names(d), value = TRUE)
  months <- as.numeric(sub("^observed_spp_m", "", cols))
  cols <- cols[order(months)][-1]
  list(arm = as.numeric(d$arm == "treatment"), stratum = as.numeric(d$stratum == "diabetes"),
       baseline = as.numeric(d$observed_spp_m0), id = d$id,
       y = as.matrix(sapply(cols, function(cl) as.numeric(d[[cl]]))),
       visits = sub("^observed_spp_m", "", cols))
}

to_long <- function(pat) {
  J <- ncol(pat$y)
  long <- do.call(rbind, lapply(seq_len(J), function(j) {
    data.frame(id = pat$id, vnum = j, visit = pat$visits[j], y = pat$y[, j], arm = pat$arm,
               baseline = pat$baseline, stratum = pat$stratum)
  }))
  long <- long[!is.na(long$y), ]
  long <- long[order(long$id, long$vnum), ]
  long$visit <- factor(long$visit, levels = pat$visits)
  rownames(long) <- NULL
  long
}

# ---------------------------------------------------------------------------------------------
# Dense REML quantities. theta = Sigma's unique elements, (a, b) with a >= b, a-major (as
# models/mmrm.cpp orders them; no result depends on the order).

theta_elems <- function(J) {
  e <- NULL
  for (a in 1:J) for (b in 1:a) e <- rbind(e, c(a, b))
  e
}
sigma_of <- function(theta, J) {
  e <- theta_elems(J)
  S <- matrix(0, J, J)
  for (k in seq_len(nrow(e))) S[e[k, 1], e[k, 2]] <- S[e[k, 2], e[k, 1]] <- theta[k]
  S
}
theta_of <- function(S) {
  e <- theta_elems(nrow(S))
  S[e]
}

dense <- function(long, X, Sigma) {
  J <- nrow(Sigma)
  ids <- unique(long$id)
  blocks <- lapply(ids, function(i) long$vnum[long$id == i])
  N <- nrow(long)
  blockdiag <- function(S) {
    M <- matrix(0, N, N)
    at <- 0
    for (v in blocks) {
      k <- length(v)
      M[at + seq_len(k), at + seq_len(k)] <- S[v, v, drop = FALSE]
      at <- at + k
    }
    M
  }
  e <- theta_elems(J)
  dV <- lapply(seq_len(nrow(e)), function(k) {
    E <- matrix(0, J, J)
    E[e[k, 1], e[k, 2]] <- E[e[k, 2], e[k, 1]] <- 1
    blockdiag(E)
  })
  V <- blockdiag(Sigma)
  Vi <- solve(V)
  XtViX <- crossprod(X, Vi %*% X)
  Phi <- solve(XtViX)
  P <- Vi - Vi %*% X %*% Phi %*% t(X) %*% Vi
  y <- long$y
  p <- ncol(X)
  loglik <- -0.5 * ((N - p) * log(2 * pi) + as.numeric(determinant(V)$modulus) +
                      as.numeric(determinant(XtViX)$modulus) + drop(t(y) %*% P %*% y))
  list(V = V, Vi = Vi, Phi = Phi, P = P, dV = dV, loglik = loglik, y = y, X = X)
}

# Expected REML information, I_kl = tr(P dV_k P dV_l) / 2.
expected_information <- function(D) {
  PdV <- lapply(D$dV, function(dv) D$P %*% dv)
  K <- length(D$dV)
  I <- matrix(0, K, K)
  for (k in 1:K) for (l in 1:K) I[k, l] <- 0.5 * sum(PdV[[k]] * t(PdV[[l]]))
  I
}

# REML score, -tr(P dV_k) / 2 + y' P dV_k P y / 2.
reml_score <- function(D) {
  Py <- D$P %*% D$y
  sapply(D$dV, function(dv) -0.5 * sum(D$P * dv) + 0.5 * drop(t(Py) %*% dv %*% Py))
}

# Observed REML information, minus the Hessian: with d2 V = 0,
# -tr(P dV_k P dV_l) / 2 + y' P dV_k P dV_l P y.
observed_information <- function(D) {
  Py <- drop(D$P %*% D$y)
  s <- lapply(D$dV, function(dv) drop(dv %*% Py))
  K <- length(D$dV)
  H <- -expected_information(D)
  for (k in 1:K) for (l in 1:K) H[k, l] <- H[k, l] + drop(t(s[[k]]) %*% D$P %*% s[[l]])
  H
}

# Kenward & Roger (1997), from the paper's formulas, for an l x p contrast matrix L.
kenward_roger <- function(D, L) {
  X <- D$X; Vi <- D$Vi; Phi <- D$Phi
  K <- length(D$dV)
  W <- solve(expected_information(D))
  ViX <- Vi %*% X
  Pk <- lapply(D$dV, function(dv) -t(ViX) %*% dv %*% ViX)
  U <- matrix(0, ncol(X), ncol(X))
  for (k in 1:K) for (j in 1:K) {
    Qkj <- t(ViX) %*% D$dV[[k]] %*% Vi %*% D$dV[[j]] %*% ViX
    U <- U + W[k, j] * (Qkj - Pk[[k]] %*% Phi %*% Pk[[j]])   # R_kj = 0: V linear in theta
  }
  PhiA <- Phi + 2 * Phi %*% U %*% Phi
  l <- nrow(L)
  Theta <- t(L) %*% solve(L %*% Phi %*% t(L)) %*% L
  A1 <- 0; A2 <- 0
  for (k in 1:K) for (j in 1:K) {
    Mk <- Theta %*% Phi %*% Pk[[k]] %*% Phi
    Mj <- Theta %*% Phi %*% Pk[[j]] %*% Phi
    A1 <- A1 + W[k, j] * sum(diag(Mk)) * sum(diag(Mj))
    A2 <- A2 + W[k, j] * sum(diag(Mk %*% Mj))
  }
  B <- (A1 + 6 * A2) / (2 * l)
  g <- ((l + 1) * A1 - (l + 4) * A2) / ((l + 2) * A2)
  c1 <- g / (3 * l + 2 * (1 - g))
  c2 <- (l - g) / (3 * l + 2 * (1 - g))
  c3 <- (l + 2 - g) / (3 * l + 2 * (1 - g))
  Estar <- 1 / (1 - A2 / l)
  Vstar <- (2 / l) * (1 + c1 * B) / ((1 - c2 * B)^2 * (1 - c3 * B))
  rho <- Vstar / (2 * Estar^2)
  m <- 4 + (l + 2) / (l * rho - 1)
  lambda <- m / (Estar * (m - 2))
  list(PhiA = PhiA, m = m, lambda = lambda, A1 = A1, A2 = A2)
}

# ---------------------------------------------------------------------------------------------

fit_gls <- function(long, name, control) {
  withCallingHandlers(
    gls(y ~ 0 + visit + visit:arm + visit:baseline + stratum, data = long,
        correlation = corSymm(form = ~ vnum | id), weights = varIdent(form = ~ 1 | visit),
        method = "REML", control = control),
    warning = function(w) message(sprintf("  [%s] gls warning: %s", name, conditionMessage(w))))
}

reference <- function(pat, name) {
  J <- ncol(pat$y)
  if (length(unique(pat$stratum)) < 2) fail("%s: the stratum must vary (trialsim drops it otherwise)", name)
  long <- to_long(pat)
  v <- levels(long$visit)
  beta_names <- c(paste0("visit", v), paste0("visit", v, ":arm"), paste0("visit", v, ":baseline"), "stratum")
  ctrl <- glsControl(tolerance = 1e-10, msTol = 1e-12, maxIter = 500, msMaxIter = 500)
  fit <- fit_gls(long, name, ctrl)
  beta_gls <- coef(fit)
  if (!setequal(names(beta_gls), beta_names)) fail("%s: unexpected coefficient names %s", name,
                                                   paste(names(beta_gls), collapse = ", "))
  beta_gls <- beta_gls[beta_names]
  X <- model.matrix(~ 0 + visit + visit:arm + visit:baseline + stratum, data = long)[, beta_names]
  cvec <- as.numeric(beta_names == paste0("visit", v[J], ":arm"))

  # gls's Sigma, checked against its own SE and log-likelihood, is the start of the polish.
  full <- as.character(long$id[long$vnum == J & long$id %in% long$id[long$vnum == 1]])
  full <- full[vapply(full, function(i) sum(long$id == i) == J, TRUE)][1]
  Sigma_gls <- as.matrix(getVarCov(fit, individual = full))
  D_gls <- dense(long, X, Sigma_gls)
  check_close(sqrt(drop(t(cvec) %*% D_gls$Phi %*% cvec)), sqrt(diag(vcov(fit)))[[beta_names[which(cvec == 1)]]],
              sprintf("%s: SE dense vs gls", name), 1e-7)
  check_close(D_gls$loglik, as.numeric(logLik(fit)), sprintf("%s: REML loglik dense vs gls", name), 1e-10)

  theta <- theta_of(Sigma_gls)
  for (iter in 1:200) {
    D <- dense(long, X, sigma_of(theta, J))
    step <- drop(solve(expected_information(D), reml_score(D)))
    theta <- theta + step
    if (max(abs(step) / abs(theta)) < 1e-14) break
  }
  if (iter == 200) fail("%s: Fisher scoring did not converge", name)
  Sigma <- sigma_of(theta, J)
  if (any(eigen(Sigma, symmetric = TRUE)$values <= 0)) fail("%s: Sigma not positive definite", name)
  D <- dense(long, X, Sigma)
  if (D$loglik < as.numeric(logLik(fit)) - 1e-12) fail("%s: polished loglik below gls's", name)
  score <- reml_score(D)

  beta <- drop(D$Phi %*% t(X) %*% D$Vi %*% D$y)
  est <- sum(cvec * beta)
  var <- drop(t(cvec) %*% D$Phi %*% cvec)
  # g_k = d(c' Phi c) / d theta_k = c' Phi X' V^-1 dV_k V^-1 X Phi c.
  a <- D$Vi %*% X %*% D$Phi %*% cvec
  g <- sapply(D$dV, function(dv) drop(t(a) %*% dv %*% a))
  I_E <- expected_information(D)
  I_O <- observed_information(D)
  df_expected <- 2 * var^2 / drop(t(g) %*% solve(I_E, g))
  df_observed <- 2 * var^2 / drop(t(g) %*% solve(I_O, g))

  # Numerical checks: g against central differences of c' Phi c; the analytical observed
  # information against central differences of the analytical score.
  K <- length(theta)
  g_num <- numeric(K)
  H_num <- matrix(0, K, K)
  for (k in 1:K) {
    h <- 1e-4 * max(abs(theta[k]), 1e-2 * sqrt(Sigma[1, 1] * Sigma[J, J]))
    e <- replace(numeric(K), k, h)
    Dp <- dense(long, X, sigma_of(theta + e, J)); Dm <- dense(long, X, sigma_of(theta - e, J))
    g_num[k] <- (drop(t(cvec) %*% Dp$Phi %*% cvec) - drop(t(cvec) %*% Dm$Phi %*% cvec)) / (2 * h)
    H_num[, k] <- -(reml_score(Dp) - reml_score(Dm)) / (2 * h)
  }
  rel_g <- max(abs(g - g_num)) / max(abs(g))
  if (rel_g > 1e-6) fail("%s: g vs numerical %.3g", name, rel_g)
  rel_h <- max(abs(I_O - H_num)) / max(abs(I_O))
  if (rel_h > 1e-6) fail("%s: observed information vs numerical %.3g", name, rel_h)

  # Kenward-Roger: this script's code, then pbkrtest's on the same V and dV_k.
  L <- matrix(cvec, nrow = 1)
  kr <- kenward_roger(D, L)
  if (abs(kr$lambda - 1) > 1e-12) fail("%s: lambda %.17g is not 1 for one contrast", name, kr$lambda)
  check_close(kr$m, df_expected, sprintf("%s: KR df vs expected-information Satterthwaite", name), 1e-10)
  var_kr <- drop(t(cvec) %*% kr$PhiA %*% cvec)
  PhiA_pb <- pbkrtest:::vcovAdj_internal(D$Phi, list(Sigma = D$V, G = D$dV, n.ggamma = K), X)
  kr_pb <- pbkrtest:::.KR_adjust(PhiA_pb, D$Phi, L, beta, rep(0, length(beta)))
  rel_pb_var <- check_close(drop(t(cvec) %*% as.matrix(PhiA_pb) %*% cvec), var_kr,
                            sprintf("%s: KR variance vs pbkrtest", name), 1e-9)
  rel_pb_df <- check_close(kr_pb$ddf, kr$m, sprintf("%s: KR df vs pbkrtest", name), 1e-9)
  if (abs(kr_pb$F.scaling - 1) > 1e-12) fail("%s: pbkrtest F scaling %.17g", name, kr_pb$F.scaling)
  check_close(kr_pb$Fstat, est^2 / var_kr, sprintf("%s: KR F vs pbkrtest", name), 1e-9)

  # emmeans' Satterthwaite df for gls (see the header): a cross-check of the observed df.
  df_emmeans <- tryCatch({
    fit_u <- fit_gls(long, name, glsControl(tolerance = 1e-10, msTol = 1e-12, maxIter = 500,
                                            msMaxIter = 500, natural = FALSE))
    rg <- suppressMessages(ref_grid(fit_u, at = list(arm = c(0, 1)), data = long, mode = "satterthwaite"))
    con <- summary(contrast(emmeans(rg, ~ arm | visit), "revpairwise"))
    con$df[con$visit == v[J]]
  }, error = function(e) { message(sprintf("  [%s] emmeans: %s", name, conditionMessage(e))); NA })

  se_kr <- sqrt(var_kr)
  t_kr <- est / se_kr
  q_kr <- qt(0.975, kr$m)
  se <- sqrt(var)
  q_obs <- qt(0.975, df_observed)
  list(J = J, long = long, patients = length(unique(long$id)), observations = nrow(long),
       est = est, se = se, reml_loglik = D$loglik, iterations = iter, score = max(abs(score)),
       df_expected = df_expected, df_observed = df_observed,
       p_observed = 2 * pt(-abs(est / se), df_observed),
       ci_low_observed = est - q_obs * se, ci_high_observed = est + q_obs * se,
       se_kr = se_kr, df_kr = kr$m, p_kr = 2 * pt(-abs(t_kr), kr$m),
       ci_low_kr = est - q_kr * se_kr, ci_high_kr = est + q_kr * se_kr,
       df_emmeans = df_emmeans, rel_g = rel_g, rel_h = rel_h, rel_pb_var = rel_pb_var, rel_pb_df = rel_pb_df)
}

# ---------------------------------------------------------------------------------------------
# Run and write the header

results <- list()
for (fx in fixtures) {
  pat <- read_fixture(file.path(fixture_dir, fx$file))
  r <- reference(pat, fx$name)
  results[[fx$name]] <- list(fx = fx, pat = pat, r = r)
  cat(sprintf("%s (%s): %d randomized, %d visits; MMRM %d patients, %d observations\n", fx$name, fx$about,
              length(pat$arm), r$J, r$patients, r$observations))
  cat(sprintf("  effect %.6f; SE plug-in %.6f, Kenward-Roger %.6f (+%.2f%%); REML maximum after %d Fisher steps, |score| %.2g\n",
              r$est, r$se, r$se_kr, 100 * (r$se_kr / r$se - 1), r$iterations, r$score))
  cat(sprintf("  df: expected information %.6f (= KR), observed %.6f (%+.2f%%), emmeans %.6f (vs observed %+.3g%%)\n",
              r$df_expected, r$df_observed, 100 * (r$df_observed / r$df_expected - 1), r$df_emmeans,
              100 * (r$df_emmeans / r$df_observed - 1)))
  cat(sprintf("  checks: g vs numerical %.2g, observed information vs numerical %.2g, pbkrtest variance %.2g, df %.2g\n",
              r$rel_g, r$rel_h, r$rel_pb_var, r$rel_pb_df))
}

wrap <- function(items, per_line, indent) {
  lines <- split(items, ceiling(seq_along(items) / per_line))
  paste0(indent, vapply(lines, function(l) paste0(paste(l, collapse = ", "), ","), ""), collapse = "\n")
}
vec <- function(items, per_line, indent = "        ") {
  paste0("{\n", wrap(items, per_line, paste0(indent, "    ")), "\n", indent, "}")
}
versions <- sprintf("%s; nlme %s, pbkrtest %s, emmeans %s", R.version.string, packageVersion("nlme"),
                    packageVersion("pbkrtest"), packageVersion("emmeans"))

out <- c(
  "// Generated by tests/reference/make_mmrm_small_sample_reference.R; do not edit by hand.",
  "// Regenerate from the repository root, after installing R and the packages with",
  "//   apt-get update",
  "//   DEBIAN_FRONTEND=noninteractive apt-get install -y r-base-core r-cran-nlme r-cran-pbkrtest r-cran-emmeans",
  "// with:",
  "//   Rscript tests/reference/make_mmrm_small_sample_reference.R",
  sprintf("// Reference software: %s.", versions),
  "//",
  "// Data: tests/reference/fixtures/*.csv (trialsim patients CSVs), randomized patients only, in",
  "// file order; treated = arm is treatment, stratum = 1 for diabetes, baseline = observed_spp_m0,",
  "// y = observed SPP at the post-baseline visits, row-major (patients x visits), kMissing = not observed.",
  "//",
  "// The MMRM of nlme::gls(y ~ 0 + visit + visit:arm + visit:baseline + stratum,",
  "//   correlation = corSymm(form = ~ vnum | id), weights = varIdent(form = ~ 1 | visit),",
  "//   method = \"REML\"), polished to the REML maximum by Fisher scoring on dense matrices.",
  "//   effect = the arm coefficient at the last visit, c' beta; se = sqrt(c' Phi c), Phi = (X' V^-1 X)^-1.",
  "//   theta = Sigma's unique elements (V linear in theta). g_k = d(c' Phi c) / d theta_k.",
  "//   df_expected = 2 (c' Phi c)^2 / (g' I^-1 g), I = expected REML information tr(P dV_k P dV_l) / 2.",
  "//   df_observed = the same with the observed information (minus the analytical REML Hessian,",
  "//     -tr(P dV_k P dV_l) / 2 + y' P dV_k P dV_l P y), checked against a numerical Jacobian of the",
  "//     score; p_observed and ci_*_observed use se and t(df_observed).",
  "//   Kenward & Roger (1997) with W = I^-1 and R_ij = 0: se_kr = sqrt(c' Phi_A c); df_kr = their m",
  "//     (equal to df_expected for one contrast; lambda = 1), identical (< 1e-9) to pbkrtest's",
  "//     vcovAdj_internal / .KR_adjust given the same V and dV_k; p_kr and ci_*_kr use se_kr, t(df_kr).",
  "//   emmeans' Satterthwaite df for gls (numerical, at gls's optimum; approximates df_observed) is in",
  "//   a comment per fixture, for information only.",
  "#pragma once",
  "",
  "#include <limits>",
  "#include <vector>",
  "",
  "namespace ref_mmrm_small_sample {",
  "",
  "inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();",
  "",
  "struct Fixture {",
  "  const char* name;",
  "  int visits;                 // post-baseline visits J",
  "  std::vector<int> treated;   // 1 = treatment, 0 = control",
  "  std::vector<int> stratum;   // 1 = diabetes, 0 = no diabetes",
  "  std::vector<double> baseline;",
  "  std::vector<double> y;      // patients x visits, row-major; kMissing = not observed",
  "  int patients, observations;",
  "  double effect, se, reml_loglik;",
  "  double df_expected;",
  "  double df_observed, p_observed, ci_low_observed, ci_high_observed;",
  "  double se_kr, df_kr, p_kr, ci_low_kr, ci_high_kr;",
  "};",
  "",
  "inline const std::vector<Fixture> fixtures = {"
)
for (res in results) {
  r <- res$r; pat <- res$pat
  out <- c(out,
    sprintf("    // %s: %s.", res$fx$file, res$fx$about),
    sprintf("    // %d randomized; MMRM %d patients, %d observations. emmeans' Satterthwaite df %s.",
            length(pat$arm), r$patients, r$observations, sprintf("%.17g", r$df_emmeans)),
    "    Fixture{",
    sprintf("        .name = \"%s\",", res$fx$name),
    sprintf("        .visits = %d,", r$J),
    sprintf("        .treated = %s,", vec(sprintf("%d", as.integer(pat$arm)), 20)),
    sprintf("        .stratum = %s,", vec(sprintf("%d", as.integer(pat$stratum)), 20)),
    sprintf("        .baseline = %s,", vec(fmt(pat$baseline), 4)),
    sprintf("        .y = %s,", vec(fmt(as.vector(t(pat$y))), r$J)),
    sprintf("        .patients = %d,", r$patients),
    sprintf("        .observations = %d,", r$observations),
    sprintf("        .effect = %s,", fmt(r$est)),
    sprintf("        .se = %s,", fmt(r$se)),
    sprintf("        .reml_loglik = %s,", fmt(r$reml_loglik)),
    sprintf("        .df_expected = %s,", fmt(r$df_expected)),
    sprintf("        .df_observed = %s,", fmt(r$df_observed)),
    sprintf("        .p_observed = %s,", fmt(r$p_observed)),
    sprintf("        .ci_low_observed = %s,", fmt(r$ci_low_observed)),
    sprintf("        .ci_high_observed = %s,", fmt(r$ci_high_observed)),
    sprintf("        .se_kr = %s,", fmt(r$se_kr)),
    sprintf("        .df_kr = %s,", fmt(r$df_kr)),
    sprintf("        .p_kr = %s,", fmt(r$p_kr)),
    sprintf("        .ci_low_kr = %s,", fmt(r$ci_low_kr)),
    sprintf("        .ci_high_kr = %s,", fmt(r$ci_high_kr)),
    "    },")
}
out <- c(out, "};", "", "}  // namespace ref_mmrm_small_sample", "")
writeLines(out, output)
cat(sprintf("wrote %s\n", output))
