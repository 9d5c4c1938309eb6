#!/usr/bin/env Rscript
# Writes tests/reference/mmrm_reference.hpp: three patient-level fixture trials and, for each,
# reference results of two analyses computed by R:
#
#  * MMRM: REML fit by nlme::gls with an unstructured 2x2 covariance (corSymm + varIdent), the
#    treatment effect at month 12 with a Satterthwaite df computed here from dense matrices
#    (expected REML information), cross-checked against emmeans' Satterthwaite df;
#  * IPW: completers at month 12 weighted by 1 / P(completed) from sequential logistic models, weighted
#    least squares with an HC2 sandwich SE (sandwich::vcovHC), df = completers - 4.
#
# Run from the repository root (CI does not need R: the header is committed):
#   apt-get update
#   DEBIAN_FRONTEND=noninteractive apt-get install -y r-base-core r-cran-nlme r-cran-sandwich r-cran-emmeans
#   Rscript tests/reference/make_mmrm_reference.R
#
# The fixtures (tests/reference/fixtures/*.csv) are kept in the repository, so the references
# do not change when the simulator does. They were written by trialsim's patients CSV:
#   build/trialsim run configs/seed_trial.toml --seed 11 --replicate 3 \
#     --set measurement.missed_visit_prob=0.15 --patients-csv tests/reference/fixtures/trial_a.csv --quiet
#   build/trialsim run configs/seed_trial.toml --seed 23 --replicate 7 \
#     --set measurement.missed_visit_prob=0.15 --patients-csv tests/reference/fixtures/trial_b.csv --quiet
#   build/trialsim run configs/seed_trial.toml --seed 37 --replicate 5 \
#     --set measurement.missed_visit_prob=0.15 --set dropout.spp_hazard_ratio_per_10=2.0 \
#     --set dropout.death_per_year=0.3 --patients-csv tests/reference/fixtures/trial_c.csv --quiet
#
# Every number written to the header is printed with 17 significant digits, so the C++ doubles
# are exactly the doubles R used (including the data, which R parsed from the CSVs).

suppressPackageStartupMessages({
  library(nlme)
  library(sandwich)
  library(emmeans)
})

script_dir <- local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(file_arg) == 1) dirname(normalizePath(sub("^--file=", "", file_arg)))
  else file.path("tests", "reference")
})
fixture_dir <- file.path(script_dir, "fixtures")
output <- file.path(script_dir, "mmrm_reference.hpp")

fixtures <- list(
  list(name = "trial_a", file = "trial_a.csv",
       about = "seed 11, replicate 3, missed_visit_prob 0.15"),
  list(name = "trial_b", file = "trial_b.csv",
       about = "seed 23, replicate 7, missed_visit_prob 0.15"),
  list(name = "trial_c", file = "trial_c.csv",
       about = paste("seed 37, replicate 5, missed_visit_prob 0.15, heavier informative dropout",
                     "(spp_hazard_ratio_per_10 2.0, death_per_year 0.3)"))
)

fail <- function(...) stop(sprintf(...), call. = FALSE)
check_close <- function(a, b, what, rtol) {
  rel <- max(abs(a - b) / pmax(abs(b), .Machine$double.xmin))
  if (!is.finite(rel) || rel > rtol) fail("%s: relative difference %.3g > %.3g", what, rel, rtol)
  rel
}
fmt <- function(x) {
  s <- ifelse(is.na(x), "kMissing", sprintf("%.17g", x))
  ifelse(is.na(x) | grepl("[.eninf]", s), s, paste0(s, ".0"))
}

# ---------------------------------------------------------------------------------------------
# Data

read_fixture <- function(path) {
  d <- read.csv(path, stringsAsFactors = FALSE, na.strings = "")
  d <- d[d$status == "randomized", ]
  if (!all(d$arm %in% c("treatment", "control"))) fail("%s: unexpected arm", path)
  if (!all(d$stratum %in% c("diabetes", "no_diabetes"))) fail("%s: unexpected stratum", path)
  if (anyNA(d$observed_spp_m0)) fail("%s: randomized patient without a baseline", path)
  data.frame(id = d$id,
             arm = as.numeric(d$arm == "treatment"),
             stratum = as.numeric(d$stratum == "diabetes"),
             baseline = as.numeric(d$observed_spp_m0),
             y6 = as.numeric(d$observed_spp_m6),
             y12 = as.numeric(d$observed_spp_m12))
}

to_long <- function(pat) {
  one <- function(vnum, visit, y) {
    data.frame(id = pat$id, vnum = vnum, visit = visit, y = y, arm = pat$arm,
               baseline = pat$baseline, stratum = pat$stratum)
  }
  long <- rbind(one(1L, "6", pat$y6), one(2L, "12", pat$y12))
  long <- long[!is.na(long$y), ]
  long <- long[order(long$id, long$vnum), ]
  long$visit <- factor(long$visit, levels = c("6", "12"))
  rownames(long) <- NULL
  long
}

# ---------------------------------------------------------------------------------------------
# MMRM

beta_names <- c("visit6", "visit12", "visit6:arm", "visit12:arm", "visit6:baseline",
                "visit12:baseline", "stratum")

# Sigma (2x2) from the fitted variance and correlation structures.
fitted_sigma <- function(fit) {
  ratio <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
  ratio <- ratio[c("6", "12")]
  rho <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
  if (length(rho) != 1) fail("corSymm: expected one correlation")
  sd <- fit$sigma * ratio
  matrix(c(sd[1]^2, rho * sd[1] * sd[2], rho * sd[1] * sd[2], sd[2]^2), 2, 2)
}

# Dense quantities at Sigma: V, Phi = (X'V^-1X)^-1, P, dV_k, and the standard REML
# log-likelihood -1/2 [(N-p) log(2 pi) + log|V| + log|X'V^-1X| + y'Py].
dense <- function(long, X, Sigma) {
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
  E <- list(matrix(c(1, 0, 0, 0), 2, 2), matrix(c(0, 1, 1, 0), 2, 2), matrix(c(0, 0, 0, 1), 2, 2))
  V <- blockdiag(Sigma)
  Vi <- solve(V)
  XtViX <- crossprod(X, Vi %*% X)
  Phi <- solve(XtViX)
  P <- Vi - Vi %*% X %*% Phi %*% t(X) %*% Vi
  dV <- lapply(E, blockdiag)
  y <- long$y
  p <- ncol(X)
  loglik <- -0.5 * ((N - p) * log(2 * pi) + as.numeric(determinant(V)$modulus) +
                      as.numeric(determinant(XtViX)$modulus) + drop(t(y) %*% P %*% y))
  list(V = V, Vi = Vi, Phi = Phi, P = P, dV = dV, loglik = loglik, y = y)
}

reml_information <- function(D) {
  PdV <- lapply(D$dV, function(dv) D$P %*% dv)
  I <- matrix(0, 3, 3)
  for (k in 1:3) for (l in 1:3) I[k, l] <- 0.5 * sum(diag(PdV[[k]] %*% PdV[[l]]))
  I
}

reml_score <- function(D) {
  Py <- D$P %*% D$y
  sapply(D$dV, function(dv) -0.5 * sum(D$P * dv) + 0.5 * drop(t(Py) %*% dv %*% Py))
}

satterthwaite_df <- function(D, X, cvec) {
  I <- reml_information(D)
  W <- solve(I)
  A <- D$Phi %*% cvec                       # Phi c
  B <- D$Vi %*% X %*% A                     # V^-1 X Phi c
  g <- sapply(D$dV, function(dv) -drop(t(B) %*% dv %*% B))
  v <- drop(t(cvec) %*% D$Phi %*% cvec)
  list(df = 2 * v^2 / drop(t(g) %*% W %*% g), var = v, g = g, W = W, I = I)
}

sigma_of <- function(theta) matrix(theta[c(1, 2, 2, 3)], 2, 2)

fit_gls <- function(long, name, control, start = NULL) {
  cor <- if (is.null(start)) corSymm(form = ~ vnum | id)
         else corSymm(value = start$rho, form = ~ vnum | id)
  var <- if (is.null(start)) varIdent(form = ~ 1 | visit)
         else varIdent(value = c("12" = start$ratio), form = ~ 1 | visit)
  withCallingHandlers(
    gls(y ~ 0 + visit + visit:arm + visit:baseline + stratum, data = long,
        correlation = cor, weights = var, method = "REML", control = control),
    warning = function(w) message(sprintf("  [%s] gls warning: %s", name, conditionMessage(w))))
}

mmrm_reference <- function(pat, name) {
  long <- to_long(pat)
  ctrl <- glsControl(tolerance = 1e-10, msTol = 1e-12, maxIter = 500, msMaxIter = 500)
  fit <- fit_gls(long, name, ctrl)
  beta_gls <- coef(fit)
  if (!setequal(names(beta_gls), beta_names)) fail("unexpected coefficient names: %s",
                                                   paste(names(beta_gls), collapse = ", "))
  beta_gls <- beta_gls[beta_names]
  se_gls <- sqrt(diag(vcov(fit)))[["visit12:arm"]]
  Sigma_gls <- fitted_sigma(fit)
  both <- as.character(long$id[duplicated(long$id)][1])
  check_close(as.numeric(getVarCov(fit, individual = both)), as.numeric(Sigma_gls),
              "Sigma vs getVarCov", 1e-12)

  X <- model.matrix(~ 0 + visit + visit:arm + visit:baseline + stratum, data = long)
  X <- X[, beta_names]
  cvec <- as.numeric(beta_names == "visit12:arm")

  # Dense formulas at gls's own Sigma reproduce gls's beta, SE and log-likelihood.
  D_gls <- dense(long, X, Sigma_gls)
  check_close(drop(D_gls$Phi %*% t(X) %*% D_gls$Vi %*% D_gls$y), as.numeric(beta_gls),
              "GLS beta dense vs gls", 1e-8)
  rel_se <- check_close(sqrt(drop(t(cvec) %*% D_gls$Phi %*% cvec)), se_gls,
                        "SE dense vs gls", 1e-8)
  loglik_gls <- as.numeric(logLik(fit))
  check_close(D_gls$loglik, loglik_gls, "REML log-likelihood dense vs nlme", 1e-12)
  S_gls <- satterthwaite_df(D_gls, X, cvec)
  theta_gls <- Sigma_gls[c(1, 2, 4)]

  # gls optimizes with nlminb at its default rel.tol (glsControl's msTol is not passed to
  # nlminb), which leaves theta a few 1e-6 (relative) short of the REML maximum. The reference
  # is the maximum itself: Fisher scoring from gls's Sigma until the step is at rounding level.
  theta <- theta_gls
  for (iter in 1:200) {
    D <- dense(long, X, sigma_of(theta))
    step <- drop(solve(reml_information(D), reml_score(D)))
    theta <- theta + step
    if (max(abs(step) / abs(theta)) < 1e-14) break
  }
  if (iter == 200) fail("%s: Fisher scoring did not converge", name)
  Sigma <- sigma_of(theta)
  if (any(eigen(Sigma, symmetric = TRUE)$values <= 0)) fail("%s: Sigma not positive definite", name)
  D <- dense(long, X, Sigma)
  score <- reml_score(D)
  if (D$loglik < loglik_gls - 1e-12) fail("%s: polished loglik below gls's", name)

  # gls restarted at the polished Sigma must not find a higher likelihood.
  start <- list(rho = Sigma[2, 1] / sqrt(Sigma[1, 1] * Sigma[2, 2]),
                ratio = sqrt(Sigma[2, 2] / Sigma[1, 1]))
  fit_restart <- fit_gls(long, name, ctrl, start)
  loglik_restart <- as.numeric(logLik(fit_restart))
  if (loglik_restart > D$loglik + 1e-10) fail("%s: gls restarted at the polished Sigma found a higher likelihood", name)

  beta <- drop(D$Phi %*% t(X) %*% D$Vi %*% D$y)
  S <- satterthwaite_df(D, X, cvec)
  se <- sqrt(S$var)
  est <- beta[4]
  df <- S$df
  tval <- est / se
  p <- 2 * pt(-abs(tval), df)
  q <- qt(0.975, df)

  # Numerical cross-checks of the Satterthwaite ingredients: g against central differences of
  # c' Phi(theta) c, and the df with the observed information (the Jacobian of the analytical
  # score by central differences), which is what emmeans approximates.
  var_at <- function(th) { Dh <- dense(long, X, sigma_of(th)); drop(t(cvec) %*% Dh$Phi %*% cvec) }
  g_num <- numeric(3)
  H <- matrix(0, 3, 3)
  for (k in 1:3) {
    h <- 1e-4 * abs(theta[k])
    e <- replace(numeric(3), k, h)
    g_num[k] <- (var_at(theta + e) - var_at(theta - e)) / (2 * h)
    H[, k] <- -(reml_score(dense(long, X, sigma_of(theta + e))) -
                  reml_score(dense(long, X, sigma_of(theta - e)))) / (2 * h)
  }
  # (g as defined, with its minus sign, is -d(c' Phi c)/d theta; only g' W g is used.)
  rel_g <- check_close(-S$g, g_num, "Satterthwaite gradient g vs numerical", 1e-6)
  H <- (H + t(H)) / 2
  df_observed <- 2 * S$var^2 / drop(t(S$g) %*% solve(H) %*% S$g)

  # emmeans' Satterthwaite df (numerical derivatives and gls's apVar, the inverse of a
  # numerical observed information, at gls's own optimum): a cross-check only. emmeans'
  # analytical method needs apVar in the same (unconstrained) parametrization as
  # coef(modelStruct), hence a refit with natural = FALSE, which changes only how apVar is
  # expressed, not the fit.
  fit_u <- fit_gls(long, name, glsControl(tolerance = 1e-10, msTol = 1e-12, maxIter = 500,
                                          msMaxIter = 500, natural = FALSE))
  if (!identical(coef(fit_u), coef(fit)) || !identical(fit_u$sigma, fit$sigma))
    fail("%s: the natural = FALSE refit differs", name)
  rg <- suppressMessages(ref_grid(fit_u, at = list(arm = c(0, 1)), data = long,
                                  mode = "satterthwaite"))
  if (attr(rg@dffun, "mesg") != "satterthwaite") fail("emmeans did not use Satterthwaite")
  con <- summary(contrast(emmeans(rg, ~ arm | visit), "revpairwise"))
  con12 <- con[con$visit == "12", ]
  check_close(con12$estimate, beta_gls[["visit12:arm"]], "emmeans contrast estimate", 1e-10)
  check_close(con12$SE, se_gls, "emmeans contrast SE", 1e-8)

  rel <- function(a, b) max(abs(a - b) / abs(b))
  list(fit = fit, long = long, est = est, se = se, se_gls = se_gls, rel_se = rel_se, df = df,
       p = p, ci_low = est - q * se, ci_high = est + q * se, beta = beta, sigma = theta,
       reml_loglik = D$loglik, loglik_gls = loglik_gls, loglik_restart = loglik_restart,
       patients = length(unique(long$id)), observations = nrow(long),
       gls_effect = beta_gls[["visit12:arm"]], df_emmeans = con12$df, df_gls = S_gls$df, df_observed = df_observed, rel_g = rel_g,
       score = score, score_gls = reml_score(D_gls), iterations = iter,
       gls_vs_max = c(theta = rel(theta_gls, theta), beta = rel(as.numeric(beta_gls), beta),
                      se = rel(se_gls, se), df = rel(S_gls$df, df)))
}

# ---------------------------------------------------------------------------------------------
# IPW

ipw_reference <- function(pat, name) {
  d <- pat
  d$completed <- as.numeric(!is.na(d$y12))
  d$seen6 <- as.numeric(!is.na(d$y6))
  d$in6 <- as.numeric(d$seen6 == 1 | d$completed == 1)  # still in the trial at month 6
  d$last_obs <- ifelse(d$seen6 == 1, d$y6, d$baseline)
  ctl <- glm.control(epsilon = 1e-14, maxit = 100)
  # Sequential (monotone dropout) completion model: P(complete) = P(in at 6) P(seen at 12 | in at 6).
  s1 <- glm(in6 ~ baseline + stratum + arm, family = binomial, data = d, control = ctl)
  if (!s1$converged) fail("%s: stage 1 logistic model did not converge", name)
  # No seen6 term: a patient who missed month 6 is known to be still in only because they were
  # seen at month 12, so the indicator would separate stage 2 by construction.
  r2 <- d[d$in6 == 1, ]
  f2 <- completed ~ baseline + stratum + arm + last_obs
  s2 <- glm(f2, family = binomial, data = r2, control = ctl)
  if (!s2$converged) fail("%s: stage 2 logistic model did not converge", name)
  s2_default <- glm(f2, family = binomial, data = r2)
  d$p <- fitted(s1)
  d$p[d$in6 == 1] <- d$p[d$in6 == 1] * fitted(s2)
  comp <- d[d$completed == 1, ]
  comp$w <- 1 / comp$p
  out <- lm(y12 ~ arm + baseline + stratum, data = comp, weights = w)
  V <- vcovHC(out, type = "HC2")
  est <- coef(out)[["arm"]]
  se <- sqrt(V["arm", "arm"])

  # The HC2 sandwich by hand: (X'WX)^-1 X' diag(w^2 e^2 / (1 - h)) X (X'WX)^-1 with
  # h = w x' (X'WX)^-1 x the weighted leverages.
  X <- model.matrix(out)
  e <- comp$y12 - drop(X %*% coef(out))
  bread <- solve(crossprod(X, comp$w * X))
  h <- comp$w * rowSums((X %*% bread) * X)
  meat <- crossprod(X, (comp$w * e)^2 / (1 - h) * X)
  check_close(sqrt((bread %*% meat %*% bread)["arm", "arm"]), se, "HC2 by hand", 1e-10)

  n <- nrow(comp)
  df <- n - 4
  tval <- est / se
  p <- 2 * pt(-abs(tval), df)
  q <- qt(0.975, df)
  stage2 <- as.numeric(coef(s2))
  list(est = est, se = se, df = df, p = p, ci_low = est - q * se, ci_high = est + q * se,
       stage1_coef = as.numeric(coef(s1)), stage2_coef = stage2, lm_coef = as.numeric(coef(out)),
       completers = n,
       logit_default_diff = max(abs(coef(s2_default) - coef(s2)) / abs(coef(s2))),
       weight_range = range(comp$w))
}

# ---------------------------------------------------------------------------------------------
# Run and write the header

results <- list()
for (fx in fixtures) {
  pat <- read_fixture(file.path(fixture_dir, fx$file))
  m <- mmrm_reference(pat, fx$name)
  w <- ipw_reference(pat, fx$name)
  results[[fx$name]] <- list(fx = fx, pat = pat, m = m, w = w)

  cat(sprintf("%s (%s): %d randomized\n", fx$name, fx$about, nrow(pat)))
  cat(sprintf("  MMRM: %d patients, %d observations; effect %.6f, SE %.6f (dense SE at gls's Sigma vs gls: rel diff %.2g)\n",
              m$patients, m$observations, m$est, m$se, m$rel_se))
  cat(sprintf("        Sigma (S11, S21, S22) = %.6f, %.6f, %.6f; REML loglik %.10f\n",
              m$sigma[1], m$sigma[2], m$sigma[3], m$reml_loglik))
  cat(sprintf("        REML maximum after %d Fisher steps from gls: score there %s, at gls %s\n",
              m$iterations, paste(sprintf("%.2g", m$score), collapse = ", "),
              paste(sprintf("%.2g", m$score_gls), collapse = ", ")))
  cat(sprintf("        gls vs maximum (rel): theta %.2g, beta %.2g, SE %.2g, df %.2g; loglik gain %.2g; gls restarted there: loglik %.10f\n",
              m$gls_vs_max[["theta"]], m$gls_vs_max[["beta"]], m$gls_vs_max[["se"]],
              m$gls_vs_max[["df"]], m$reml_loglik - m$loglik_gls, m$loglik_restart))
  cat(sprintf("        Satterthwaite df: dense (expected info) %.10f; at gls's Sigma %.10f; observed info %.10f\n",
              m$df, m$df_gls, m$df_observed))
  cat(sprintf("        emmeans %.10f: rel diff vs dense %.3g, vs dense at gls's Sigma %.3g, vs observed info %.3g; g vs numerical %.2g\n",
              m$df_emmeans, (m$df_emmeans - m$df) / m$df, (m$df_emmeans - m$df_gls) / m$df_gls,
              (m$df_emmeans - m$df_observed) / m$df_observed, m$rel_g))
  cat(sprintf("        p %.6g, 95%% CI %.6f to %.6f\n", m$p, m$ci_low, m$ci_high))
  cat(sprintf("  IPW:  %d completers; effect %.6f, SE %.6f, df %d, p %.6g, 95%% CI %.6f to %.6f\n",
              w$completers, w$est, w$se, w$df, w$p, w$ci_low, w$ci_high))
  cat(sprintf("        weights %.4f to %.4f; glm default vs tight tolerance rel diff %.2g\n",
              w$weight_range[1], w$weight_range[2], w$logit_default_diff))
}

wrap <- function(items, per_line, indent) {
  lines <- split(items, ceiling(seq_along(items) / per_line))
  paste0(indent, vapply(lines, function(l) paste0(paste(l, collapse = ", "), ","), ""),
         collapse = "\n")
}
vec <- function(items, per_line, indent = "        ") {
  paste0("{\n", wrap(items, per_line, paste0(indent, "    ")), "\n", indent, "}")
}

versions <- sprintf("%s; nlme %s, sandwich %s, emmeans %s", R.version.string,
                    packageVersion("nlme"), packageVersion("sandwich"), packageVersion("emmeans"))

emm_rel <- sapply(results, function(r) abs(r$m$df_emmeans - r$m$df) / r$m$df)
emm_range <- sprintf("%.2g%% to %.2g%%", 100 * min(emm_rel), 100 * max(emm_rel))

out <- c(
  "// Generated by tests/reference/make_mmrm_reference.R; do not edit by hand.",
  "// Regenerate from the repository root, after installing R and the packages with",
  "//   apt-get update",
  "//   DEBIAN_FRONTEND=noninteractive apt-get install -y r-base-core r-cran-nlme r-cran-sandwich r-cran-emmeans",
  "// with:",
  "//   Rscript tests/reference/make_mmrm_reference.R",
  sprintf("// Reference software: %s.", versions),
  "//",
  "// Data: tests/reference/fixtures/*.csv (trialsim patients CSVs), randomized patients only, in",
  "// file order; treated = arm is treatment, stratum = 1 for diabetes, baseline = observed_spp_m0,",
  "// y6 / y12 = observed_spp_m6 / observed_spp_m12 (kMissing = not observed).",
  "//",
  "// MMRM: one row per patient and observed post-baseline visit (patients with none are dropped),",
  "//   nlme::gls(y ~ 0 + visit + visit:arm + visit:baseline + stratum,",
  "//             correlation = corSymm(form = ~ vnum | id), weights = varIdent(form = ~ 1 | visit),",
  "//             method = \"REML\"), i.e. an unstructured 2x2 covariance Sigma. gls stops a few 1e-6",
  "//   (relative) short of the REML maximum in Sigma (nlminb's default tolerance), so the values",
  "//   below are at the maximum itself: Fisher scoring from gls's Sigma to a score of ~1e-15, then",
  "//   beta, SE and df from dense matrices there. (At gls's own Sigma the dense formulas reproduce",
  "//   gls's beta, SE and logLik to < 1e-8; gls restarted at the maximum finds nothing higher.)",
  "//   beta order: visit6, visit12, visit6:arm, visit12:arm, visit6:baseline, visit12:baseline,",
  "//   stratum. effect = beta[3] (visit12:arm), se = sqrt(c' Phi c), Phi = (X' V^-1 X)^-1.",
  "//   sigma = Sigma's unique elements S11, S21, S22 (visit 6 first).",
  "//   df: Satterthwaite with the expected REML information in theta = (S11, S21, S22):",
  "//   I_kl = tr(P dV_k P dV_l) / 2, g_k = -c' Phi X' V^-1 dV_k V^-1 X Phi c,",
  "//   df = 2 (c' Phi c)^2 / (g' I^-1 g). p two-sided from t(df); CI effect -/+ qt(0.975, df) se.",
  "//   reml_loglik: -1/2 [(N - p) log(2 pi) + log|V| + log|X' V^-1 X| + y' P y], N = observations,",
  "//   p = 7 (equal to nlme's logLik() at the same Sigma).",
  "//   emmeans' Satterthwaite df (observed information, numerically) is in a comment per fixture,",
  sprintf("//   for information only: it differs from df by %s.", emm_range),
  "//",
  "// IPW: completed = y12 observed, seen6 = y6 observed, in6 = seen6 or completed (still in at",
  "//   month 6), last_obs = y6 if observed else baseline. Sequential completion model:",
  "//   stage 1 glm(in6 ~ baseline + stratum + arm, binomial) over all randomized (stage1_coef,",
  "//   intercept first); stage 2 glm(completed ~ baseline + stratum + arm + last_obs, binomial)",
  "//   among in6 (stage2_coef);",
  "//   weight 1 / (p1 p2) for completers; lm(y12 ~ arm + baseline + stratum, weights) on",
  "//   completers (ipw_coef, intercept first); ipw_se = HC2 sandwich (sandwich::vcovHC, weights",
  "//   treated as known); ipw_df = completers - 4; p two-sided from t(ipw_df); 95% CI.",
  "#pragma once",
  "",
  "#include <array>",
  "#include <limits>",
  "#include <vector>",
  "",
  "namespace ref_mmrm {",
  "",
  "inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();",
  "",
  "struct Fixture {",
  "  const char* name;",
  "  std::vector<int> treated;   // 1 = treatment, 0 = control",
  "  std::vector<int> stratum;   // 1 = diabetes, 0 = no diabetes",
  "  std::vector<double> baseline;",
  "  std::vector<double> y6;     // NaN = missing (std::numeric_limits<double>::quiet_NaN())",
  "  std::vector<double> y12;    // NaN = missing",
  "  // MMRM, treatment effect at month 12",
  "  double effect, se, df, p, ci_low, ci_high;",
  "  std::array<double, 7> beta;",
  "  std::array<double, 3> sigma;  // S11, S21, S22",
  "  double reml_loglik;",
  "  int patients, observations;",
  "  // IPW completers analysis",
  "  double ipw_effect, ipw_se, ipw_df, ipw_p, ipw_ci_low, ipw_ci_high;",
  "  std::array<double, 4> stage1_coef;  // intercept, baseline, stratum, arm",
  "  std::array<double, 5> stage2_coef;  // intercept, baseline, stratum, arm, last_obs",
  "  std::array<double, 4> ipw_coef;    // weighted lm: intercept, arm, baseline, stratum",
  "};",
  "",
  "inline const std::vector<Fixture> fixtures = {"
)

for (r in results) {
  m <- r$m; w <- r$w; pat <- r$pat
  out <- c(out,
    sprintf("    // %s: %s.", r$fx$file, r$fx$about),
    sprintf("    // %d randomized; MMRM %d patients, %d observations; IPW %d completers.",
            nrow(pat), m$patients, m$observations, w$completers),
    sprintf("    // gls as fitted: effect %s, se %s, logLik %s.", sprintf("%.17g", m$gls_effect),
            sprintf("%.17g", m$se_gls), sprintf("%.17g", m$loglik_gls)),
    sprintf("    // Satterthwaite df with the observed information %s; emmeans' df %s.",
            sprintf("%.17g", m$df_observed), sprintf("%.17g", m$df_emmeans)),
    "    Fixture{",
    sprintf("        .name = \"%s\",", r$fx$name),
    sprintf("        .treated = %s,", vec(sprintf("%d", as.integer(pat$arm)), 20)),
    sprintf("        .stratum = %s,", vec(sprintf("%d", as.integer(pat$stratum)), 20)),
    sprintf("        .baseline = %s,", vec(fmt(pat$baseline), 4)),
    sprintf("        .y6 = %s,", vec(fmt(pat$y6), 4)),
    sprintf("        .y12 = %s,", vec(fmt(pat$y12), 4)),
    sprintf("        .effect = %s,", fmt(m$est)),
    sprintf("        .se = %s,", fmt(m$se)),
    sprintf("        .df = %s,", fmt(m$df)),
    sprintf("        .p = %s,", fmt(m$p)),
    sprintf("        .ci_low = %s,", fmt(m$ci_low)),
    sprintf("        .ci_high = %s,", fmt(m$ci_high)),
    sprintf("        .beta = %s,", vec(fmt(m$beta), 4)),
    sprintf("        .sigma = {%s},", paste(fmt(m$sigma), collapse = ", ")),
    sprintf("        .reml_loglik = %s,", fmt(m$reml_loglik)),
    sprintf("        .patients = %d,", m$patients),
    sprintf("        .observations = %d,", m$observations),
    sprintf("        .ipw_effect = %s,", fmt(w$est)),
    sprintf("        .ipw_se = %s,", fmt(w$se)),
    sprintf("        .ipw_df = %s,", fmt(w$df)),
    sprintf("        .ipw_p = %s,", fmt(w$p)),
    sprintf("        .ipw_ci_low = %s,", fmt(w$ci_low)),
    sprintf("        .ipw_ci_high = %s,", fmt(w$ci_high)),
    sprintf("        .stage1_coef = %s,", vec(fmt(w$stage1_coef), 4)),
    sprintf("        .stage2_coef = %s,", vec(fmt(w$stage2_coef), 3)),
    sprintf("        .ipw_coef = %s,", vec(fmt(w$lm_coef), 4)),
    "    },"
  )
}
out <- c(out, "};", "", "}  // namespace ref_mmrm", "")
writeLines(out, output)
cat(sprintf("wrote %s\n", output))
