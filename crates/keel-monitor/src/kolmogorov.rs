//! The distribution of the two-sided one-sample Kolmogorov-Smirnov statistic
//! D_n for finite n: a port of scipy's `kstwo.sf` (`scipy/stats/_ksstats.py`,
//! Simard & L'Ecuyer 2011's choice among Durbin's matrix, Pomeranz, Pelz-Good
//! and 2 * Smirnov), which `ks_2samp` uses for its asymptotic p-value.

const E128: i32 = 128;

fn ep128() -> f64 {
    2f64.powi(E128)
}

fn em128() -> f64 {
    2f64.powi(-E128)
}

fn clip(probability: f64) -> f64 {
    probability.clamp(0.0, 1.0)
}

fn ldexp(value: f64, exponent: i32) -> f64 {
    // Split the scaling so that neither factor overflows on its own.
    let half = exponent / 2;
    value * 2f64.powi(half) * 2f64.powi(exponent - half)
}

/// Pr(D_n >= x), as `scipy.stats.kstwo.sf(x, n)`.
pub fn kstwo_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let n_float = n as f64;
    let t = n_float * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |product, index| {
                product * (index as f64 * (1.0 / n_float) * (2.0 * t - 1.0))
            })
        } else {
            (log_factorial_div_n_pow_n(n_float) + n_float * (2.0 * t - 1.0).ln()).exp()
        };
        return clip(1.0 - cdf);
    }
    if t >= n_float - 1.0 {
        return clip(2.0 * (1.0 - x).powf(n_float));
    }
    if x >= 0.5 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let nx_squared = t * x;
    if n <= 140 {
        if nx_squared <= 0.754693 {
            return clip(1.0 - durbin_matrix_cdf(n, x));
        }
        if nx_squared <= 4.0 {
            return clip(1.0 - pomeranz_cdf(n, x));
        }
        return clip(2.0 * smirnov_sf(n, x));
    }
    if nx_squared >= 370.0 {
        return 0.0;
    }
    if nx_squared >= 2.2 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nx_squared >= 18.0 {
        1.0
    } else if n <= 100_000 && n_float * x.powf(1.5) <= 1.4 {
        durbin_matrix_cdf(n, x)
    } else {
        1.0 - pelz_good_sf(n_float, x)
    };
    clip(1.0 - cdf)
}

/// log(n! / n^n) by Stirling's series, as scipy's `_log_nfactorial_div_n_pow_n`.
fn log_factorial_div_n_pow_n(n: f64) -> f64 {
    // Digit for digit as scipy writes them, so the two can be compared.
    #[allow(clippy::excessive_precision)]
    const COEFFICIENTS: [f64; 8] = [
        -2.955065359477124183e-2,
        6.4102564102564102564e-3,
        -1.9175269175269175269e-3,
        8.4175084175084175084e-4,
        -5.952380952380952381e-4,
        7.9365079365079365079e-4,
        -2.7777777777777777778e-3,
        8.3333333333333333333e-2,
    ];
    let reciprocal = 1.0 / n;
    let argument = reciprocal / n;
    let series = COEFFICIENTS
        .iter()
        .fold(0.0, |sum, coefficient| sum * argument + coefficient);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + reciprocal * series
}

/// One-sided Smirnov tail Pr(D+_n >= x) by the Birnbaum-Tingey sum, whose
/// terms are all positive, summed from logarithms.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    let n_float = n as f64;
    let max_j = (n_float * (1.0 - x)).floor() as u64;
    let mut log_binomial = 0.0f64;
    let mut sum = 0.0;
    for j in 0..=max_j {
        let j_float = j as f64;
        if j > 0 {
            log_binomial += ((n_float - j_float + 1.0) / j_float).ln();
        }
        let low = 1.0 - x - j_float / n_float;
        let high = x + j_float / n_float;
        if low <= 0.0 && n > j {
            continue;
        }
        let log_term = log_binomial + (n_float - j_float) * low.ln() + (j_float - 1.0) * high.ln();
        sum += log_term.exp();
    }
    x * sum
}

/// Durbin's matrix method in Marsaglia, Tsang and Wang's form (scipy's
/// `_kolmogn_DMTW`): Pr(D_n <= d).
fn durbin_matrix_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|power| 1.0 - h.powi(power as i32)).collect();
    let mut w = vec![0.0; m];
    let mut factorial = 1.0;
    for j in 1..=m {
        w[j - 1] = factorial;
        factorial /= j as f64;
        v[j - 1] *= factorial;
    }
    let tail = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tail) * factorial;
    let mut matrix = vec![vec![0.0; m]; m];
    for column in 1..m {
        for row in (column - 1)..m {
            matrix[row][column] = w[row - (column - 1)];
        }
    }
    for row in 0..m {
        matrix[row][0] = v[row];
    }
    for column in 0..m {
        matrix[m - 1][column] = v[m - 1 - column];
    }
    let mut power: Vec<Vec<f64>> = (0..m)
        .map(|row| {
            (0..m)
                .map(|column| if row == column { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let mut remaining = n;
    let mut exponent: i32 = 0;
    let mut matrix_exponent: i32 = 0;
    while remaining > 0 {
        if remaining % 2 == 1 {
            power = multiply(&power, &matrix);
            exponent += matrix_exponent;
        }
        matrix = multiply(&matrix, &matrix);
        matrix_exponent *= 2;
        if matrix[k - 1][k - 1].abs() > ep128() {
            for row in matrix.iter_mut() {
                for cell in row.iter_mut() {
                    *cell /= ep128();
                }
            }
            matrix_exponent += E128;
        }
        remaining /= 2;
    }
    let mut probability = power[k - 1][k - 1];
    for index in 1..=n {
        probability = index as f64 * probability / n as f64;
        if probability.abs() < em128() {
            probability *= ep128();
            exponent -= E128;
        }
    }
    if exponent != 0 {
        probability = ldexp(probability, exponent);
    }
    clip(probability)
}

fn multiply(left: &[Vec<f64>], right: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let size = left.len();
    let mut product = vec![vec![0.0; size]; size];
    for row in 0..size {
        for inner in 0..size {
            let factor = left[row][inner];
            if factor == 0.0 {
                continue;
            }
            for column in 0..size {
                product[row][column] += factor * right[inner][column];
            }
        }
    }
    product
}

fn pomeranz_j1_j2(i: i64, n: i64, ll: i64, ceil_f: i64, round_f: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceil_f - 1, ll + ceil_f - 1)
    } else {
        let (half, odd_rest) = ((i + 1).div_euclid(2), (i + 1).rem_euclid(2));
        if odd_rest == 0 {
            if half == n + 1 {
                (n - ll - ceil_f - 1, n + ll + ceil_f - 1)
            } else {
                (half - 1 - ll - round_f - 1, half + ll - 1 + ceil_f - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + round_f - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Pomeranz's recursion (scipy's `_kolmogn_Pomeranz`): Pr(D_n <= x).
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let n_int = n as i64;
    let n_float = n as f64;
    let t = n_float * x;
    let ll = t.floor() as i64;
    let fraction = t - ll as f64;
    let g = fraction.min(1.0 - fraction);
    let ceil_f = i64::from(fraction > 0.0);
    let round_f = i64::from(fraction > 0.5);
    let n_powers = (2 * (ll + 1)) as usize;
    let mut g_power = vec![1.0; n_powers];
    let mut two_g_power = vec![1.0; n_powers];
    let mut one_minus_two_g_power = vec![1.0; n_powers];
    let (g_over_n, two_g_over_n, rest_over_n) =
        (g / n_float, 2.0 * g / n_float, (1.0 - 2.0 * g) / n_float);
    for m in 1..n_powers {
        g_power[m] = g_power[m - 1] * g_over_n / m as f64;
        two_g_power[m] = two_g_power[m - 1] * two_g_over_n / m as f64;
        one_minus_two_g_power[m] = one_minus_two_g_power[m - 1] * rest_over_n / m as f64;
    }
    let mut v0 = vec![0.0; n_powers];
    let mut v1 = vec![0.0; n_powers];
    v1[0] = 1.0;
    let (mut v0_start, mut v1_start): (i64, i64) = (0, 0);
    let mut exponent: i32 = 0;
    let (mut j1, _) = pomeranz_j1_j2(0, n_int, ll, ceil_f, round_f);
    for i in 1..(2 * n_int + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0_start, &mut v1_start);
        v1.iter_mut().for_each(|cell| *cell = 0.0);
        let (next_j1, j2) = pomeranz_j1_j2(i, n_int, ll, ceil_f, round_f);
        j1 = next_j1;
        let powers = if i == 1 || i == 2 * n_int + 1 {
            &g_power
        } else if i % 2 == 1 {
            &two_g_power
        } else {
            &one_minus_two_g_power
        };
        let length = j2 - k1 + 1;
        if length > 0 {
            let offset = (k1 - v0_start) as usize;
            let length = length as usize;
            let conv_start = (j1 - k1) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            // Entries conv_start .. conv_start + conv_len of the full
            // convolution of v0[offset .. offset + length] with powers[.. length].
            for (slot, out) in (conv_start..conv_start + conv_len).enumerate() {
                let mut total = 0.0;
                for a in 0..length.min(out + 1) {
                    let b = out - a;
                    if b < length {
                        let left = v0.get(offset + a).copied().unwrap_or(0.0);
                        total += left * powers[b];
                    }
                }
                v1[slot] = total;
            }
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < max && max < em128() {
                v1.iter_mut().for_each(|cell| *cell *= ep128());
                exponent -= E128;
            }
            v1_start = v0_start + j1 - k1;
        }
    }
    let mut answer = v1[(n_int - v1_start) as usize];
    for m in 1..=n {
        if answer.abs() > ep128() {
            answer *= em128();
            exponent += E128;
        }
        answer *= m as f64;
    }
    if exponent != 0 {
        answer = ldexp(answer, exponent);
    }
    clip(answer)
}

/// Pelz and Good's approximation (scipy's `_kolmogn_PelzGood`) of Pr(D_n >= x).
fn pelz_good_sf(n: f64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let z = n.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let q_log = -PI * PI / 8.0 / z2;
    if q_log < -708.0 {
        return 1.0;
    }
    let q = q_log.exp();
    let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let max_k = (16.0 * z / PI).ceil() as i64;
    for index in (1..=max_k).rev() {
        let m = (2 * index - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let q_power = q.powi((8 * index) as i32);
        let coefficients = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (term, coefficient) in k.iter_mut().zip(coefficients) {
            *term = *term * q_power + coefficient;
        }
    }
    let sqrt_2pi = (2.0 * PI).sqrt();
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (term, divisor) in k.iter_mut().zip(divisors) {
        *term = *term * q * sqrt_2pi / divisor;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3_z = 3f64.sqrt() * z;
    let mut k2_extra = 0.0;
    let mut k3_extra = 0.0;
    for index in (1..=max_k).rev() {
        let k_float = index as f64;
        let k_squared = k_float * k_float;
        let q_power = q.powf(k_squared);
        k2_extra += k_squared * q_power;
        let k_pi = PI * k_float;
        k3_extra += (sqrt3_z + k_pi) * (sqrt3_z - k_pi) * k_squared * q_power;
    }
    k[2] += k2_extra * pi2 * sqrt_2pi / (-36.0 * z3);
    k[3] += k3_extra * pi2 * sqrt_2pi / (216.0 * z6);
    for (power, term) in k.iter_mut().enumerate() {
        *term /= n.powf(power as f64 / 2.0);
    }
    k[0] = 1.0 - k[0];
    k[1] = -k[1];
    k[2] = -k[2];
    k[3] = -k[3];
    k.iter().sum()
}
