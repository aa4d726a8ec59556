"""GLSL sources of the GL renderer (kept as Python strings so they ship inside the package).

`SHADING` is the world's appearance model; `camworld.world.shading` is its line-for-line torch mirror used by
the ray-caster, so change both together (tests/world compare the two renderers).

Projection: OpenCV pinhole, pixel (u, v) with u in 0..W-1 at the pixel centre (no +0.5 offset, as the
Plücker rays of SANA-WM §2.4). NDC y grows with v, so GL's bottom-up framebuffer rows come back top row first.
"""

SHADING = """
uniform vec3 u_ground_c0, u_ground_c1, u_ground_grout, u_ground_accent, u_ground_accent2;
uniform vec4 u_ground_weights, u_ground_scales;
uniform vec3 u_ground_tiles, u_ground_speckles;
uniform vec3 u_sky_zenith, u_sky_horizon, u_cloud_colour, u_sun_dir, u_skyline_colour;
uniform float u_cloud_cover, u_fog_distance;
uniform vec2 u_light;
uniform vec4 u_skyline;
uniform int u_salt;

uint hash32(uint x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
float rand3(int a, int b, int c) {
    uint h = hash32((uint(a) * 0x8da6b343u) ^ (uint(b) * 0xd8163841u) ^ (uint(c) * 0xcb1ab31fu));
    return float(h >> 8) * (1.0 / 16777216.0);
}
float vnoise(vec2 p, int salt) {
    vec2 i = floor(p);
    vec2 f = p - i;
    vec2 u = f * f * (3.0 - 2.0 * f);
    int ix = int(i.x), iy = int(i.y);
    float a = rand3(ix, iy, salt), b = rand3(ix + 1, iy, salt);
    float c = rand3(ix, iy + 1, salt), d = rand3(ix + 1, iy + 1, salt);
    return mix(mix(a, b, u.x), mix(c, d, u.x), u.y);
}
// 1 while a feature of this period spans >= 4 pixels, 0 below 2 pixels: procedural anti-aliasing.
float aa(float fp, float period) { return clamp((period / max(fp, 1e-6) - 2.0) * 0.5, 0.0, 1.0); }
float square_wave(float x, float w) { return clamp((abs(fract(x) - 0.5) - 0.25) / max(w, 1e-4) + 0.5, 0.0, 1.0); }

vec3 ground_colour(vec2 q, float fp) {
    vec4 w = u_ground_weights;
    vec4 s = u_ground_scales;
    float n1 = vnoise(q / s.x, u_salt + 1);
    float n2 = vnoise(q / s.y, u_salt + 2) - 0.5;
    float n3 = vnoise(q / s.z, u_salt + 3) - 0.5;
    float st = sin(6.2831853 * (0.8 * q.x + 0.6 * q.y) / s.w + 5.0 * n1) * 0.5;
    float f = 0.5 + w.x * (n1 - 0.5) * 2.0 + w.y * n2 * 2.0 * aa(fp, s.y) + w.z * n3 * 2.0 * aa(fp, s.z)
              + w.w * st * aa(fp, s.w);
    vec3 col = mix(u_ground_c0, u_ground_c1, clamp(f, 0.0, 1.0));
    float tp = u_ground_tiles.x;
    vec2 cell = floor(q / tp);
    float tile_w = u_ground_tiles.z;
    col *= mix(1.0, 0.8 + 0.4 * rand3(int(cell.x), int(cell.y), u_salt + 8), tile_w);
    vec2 g = abs(fract(q / tp + 0.5) - 0.5) * tp;
    float line = 1.0 - smoothstep(u_ground_tiles.y, u_ground_tiles.y + fp, min(g.x, g.y));
    col = mix(col, u_ground_grout, tile_w * line * aa(fp, tp * 0.25));
    float cs = u_ground_speckles.x;
    vec2 sc = floor(q / cs);
    int sx = int(sc.x), sy = int(sc.y);
    vec2 centre = vec2(0.3 + 0.4 * rand3(sx, sy, u_salt + 5), 0.3 + 0.4 * rand3(sx, sy, u_salt + 6));
    float dist = length(q / cs - sc - centre) * cs;
    float rad = u_ground_speckles.z * cs;
    float on = step(rand3(sx, sy, u_salt + 4), u_ground_speckles.y);
    vec3 accent = mix(u_ground_accent, u_ground_accent2, step(0.5, rand3(sx, sy, u_salt + 7)));
    return mix(col, accent, on * (1.0 - smoothstep(rad, rad + fp, dist)) * aa(fp, 2.0 * rad));
}

vec3 sky_colour(vec3 d, float pixel_angle) {
    float e = -d.y;
    vec3 col = mix(u_sky_horizon, u_sky_zenith, pow(clamp(e, 0.0, 1.0), 0.6));
    vec2 uv = d.xz / (max(e, 0.0) + 0.08) * 1.5;
    float fbm = 0.55 * vnoise(uv, u_salt + 10) + 0.3 * vnoise(uv * 2.3, u_salt + 11)
                + 0.15 * vnoise(uv * 5.1, u_salt + 12);
    float t = 0.72 - 0.4 * u_cloud_cover;
    float cloud = smoothstep(t, t + 0.15, fbm) * smoothstep(0.0, 0.12, e);
    col = mix(col, u_cloud_colour * (0.8 + 0.25 * fbm), cloud * 0.92);
    float sd = dot(d, u_sun_dir);
    col = mix(col, vec3(1.0, 0.97, 0.85), smoothstep(0.9990, 0.9996, sd)) + 0.12 * pow(max(sd, 0.0), 64.0);
    vec2 h = d.xz / max(length(d.xz), 1e-6) * u_skyline.z;
    float hill = 0.65 * vnoise(h, u_salt + 13) + 0.35 * vnoise(h * 3.1, u_salt + 14);
    float block = rand3(int(floor(h.x * 3.0)), int(floor(h.y * 3.0)), u_salt + 15);
    float height = u_skyline.x + u_skyline.y * mix(hill, block * block, u_skyline.w);
    vec3 far_land = mix(u_skyline_colour, u_sky_horizon, 0.25 + 0.5 * clamp(e / max(height, 1e-3), 0.0, 1.0));
    return mix(far_land, col, smoothstep(height - pixel_angle, height + pixel_angle, e));
}

vec3 lit(vec3 col, vec3 n) {
    float diffuse = max(dot(n, u_sun_dir), 0.0);
    return col * (u_light.x * (0.75 + 0.25 * (-n.y)) + u_light.y * diffuse);
}
vec3 fogged(vec3 col, float dist) {
    float x = dist / u_fog_distance;
    return mix(col, u_sky_horizon, 1.0 - exp(-x * x));
}

// kind: 0 box, 1 cylinder, 2 sphere, 3 cone, 4 pyramid (scene.PRIMITIVE_KINDS); pattern: scene.PATTERNS.
vec3 landmark_colour(vec3 qu, vec3 nu, vec3 half_size, int kind, int pattern, float ps, int lid,
                     vec3 colour, vec3 accent, float fp) {
    vec3 m = qu * half_size;
    vec3 an = abs(nu);
    vec2 uv;
    int face = 0;
    bool flat_faces = kind == 0 || kind == 4;
    if (flat_faces) {
        if (an.x >= an.y && an.x >= an.z) { uv = vec2(m.z, m.y); face = nu.x > 0.0 ? 1 : 0; }
        else if (an.z >= an.y) { uv = vec2(m.x, m.y); face = nu.z > 0.0 ? 5 : 4; }
        else { uv = m.xz; face = nu.y > 0.0 ? 3 : 2; }
    } else if (kind == 1 && an.y > 0.9) {
        uv = m.xz;
    } else {
        uv = vec2(atan(qu.z, qu.x) * 0.5 * (half_size.x + half_size.z), m.y);
    }
    vec2 p = uv / ps;
    float w = fp / ps;
    float f;
    if (pattern == 0) {
        f = vnoise(p * 2.0, u_salt + lid);
    } else if (pattern == 1) {
        f = square_wave(p.y, w);
    } else if (pattern == 2) {
        f = square_wave(p.x, w);
    } else if (pattern == 3) {
        float a = square_wave(p.x, w), b = square_wave(p.y, w);
        f = a + b - 2.0 * a * b;
    } else if (pattern == 4) {
        float row = floor(p.y * 2.0);
        float shift = 0.5 * mod(row, 2.0);
        float bx = fract(p.x + shift), by = fract(p.y * 2.0);
        float edge = min(min(bx, 1.0 - bx), 0.5 * min(by, 1.0 - by));
        f = max(1.0 - smoothstep(0.05, 0.05 + w, edge), 0.35 * rand3(int(floor(p.x + shift)), int(row), u_salt + lid));
    } else if (pattern == 5) {
        vec2 c = fract(p);
        float inside = min(0.3 - abs(c.x - 0.5), 0.25 - abs(c.y - 0.5));
        f = smoothstep(-0.5 * w, 0.5 * w, inside) * (0.6 + 0.4 * rand3(int(floor(p.x)), int(floor(p.y)), u_salt + lid));
    } else {
        f = 1.0 - smoothstep(0.3, 0.3 + w, length(fract(p) - 0.5));
    }
    f = mix(0.4, f, aa(fp, ps));
    vec3 col = mix(colour, accent, f);
    col *= 1.0 + 0.24 * (vnoise(uv / 0.4, u_salt + lid + 100) - 0.5) * aa(fp, 0.4);
    if (flat_faces) col *= 0.88 + 0.24 * rand3(face, lid, u_salt + 20);
    return col;
}
"""

HEADER = "#version 330 core\n"

PROJECTION = """
uniform mat4 u_view;        // world -> camera (OpenCV)
uniform vec4 u_proj;        // 2fx/W, 2(cx+0.5)/W - 1, 2fy/H, 2(cy+0.5)/H - 1
uniform vec2 u_depth_map;   // clip z = a * z + b for the depth buffer only
vec4 project(vec3 cam) {
    return vec4(u_proj.x * cam.x + u_proj.y * cam.z, u_proj.z * cam.y + u_proj.w * cam.z,
                u_depth_map.x * cam.z + u_depth_map.y, cam.z);
}
"""

SKY_VERTEX = HEADER + """
in vec2 in_ndc;
out vec2 v_ndc;
void main() { v_ndc = in_ndc; gl_Position = vec4(in_ndc, 1.0, 1.0); }  // at the far plane: drawn last
"""

SKY_FRAGMENT = HEADER + SHADING + """
uniform mat3 u_rot;      // camera -> world rotation
uniform vec4 u_intr;     // fx, fy, cx, cy
uniform vec2 u_size;     // W, H
in vec2 v_ndc;
layout(location = 0) out vec4 f_colour;
layout(location = 1) out float f_depth;
void main() {
    vec2 uv = (v_ndc + 1.0) * 0.5 * u_size - 0.5;
    vec3 d = normalize(u_rot * vec3((uv.x - u_intr.z) / u_intr.x, (uv.y - u_intr.w) / u_intr.y, 1.0));
    f_colour = vec4(sky_colour(d, 1.0 / u_intr.x), 1.0);
    f_depth = 0.0;
}
"""

GROUND_VERTEX = HEADER + PROJECTION + """
uniform vec3 u_cam;
uniform float u_ground_y, u_far;
in vec2 in_xz;
out vec3 v_world;
out float v_z;
void main() {
    v_world = vec3(u_cam.x + u_far * in_xz.x, u_ground_y, u_cam.z + u_far * in_xz.y);
    vec3 cam = (u_view * vec4(v_world, 1.0)).xyz;
    v_z = cam.z;
    gl_Position = project(cam);
}
"""

GROUND_FRAGMENT = HEADER + SHADING + """
uniform vec3 u_cam;
uniform float u_far, u_focal;
in vec3 v_world;
in float v_z;
layout(location = 0) out vec4 f_colour;
layout(location = 1) out float f_depth;
void main() {
    vec3 r = v_world - u_cam;
    float dist = length(r);
    if (dist > u_far) discard;
    float fp = dist / (u_focal * max(abs(r.y) / dist, 0.02));
    vec3 col = lit(ground_colour(v_world.xz, fp), vec3(0.0, -1.0, 0.0));
    f_colour = vec4(fogged(col, dist), 1.0);
    f_depth = v_z;
}
"""

# Landmarks: the renderer pre-transforms every primitive, at every level of detail, into one static world-space
# vertex buffer; per frame it uploads the triangle indices of the visible primitives (nearest first, detail by
# screen size) and draws them in one call. Per-primitive constants live in a storage buffer, 4 vec4 each:
# (centre, yaw), (half, kind), (colour, pattern), (accent, pattern scale); the landmark id is the 5th row's x.
PRIMITIVE_BLOCK = """
layout(std430, binding = 0) readonly buffer Primitives { vec4 prim[]; };
"""

LANDMARK_VERTEX = "#version 430 core\n" + PROJECTION + """
in vec3 in_world;
in vec3 in_unit;         // point on the unit shape
in vec3 in_unit_normal;  // unit-shape normal
in float in_prim;        // primitive index
out vec3 v_unit;
out vec3 v_unit_normal;
flat out int v_prim;
void main() {
    v_unit = in_unit;
    v_unit_normal = in_unit_normal;
    v_prim = int(in_prim + 0.5);
    gl_Position = project((u_view * vec4(in_world, 1.0)).xyz);
}
"""

LANDMARK_FRAGMENT = "#version 430 core\n" + PRIMITIVE_BLOCK + SHADING + """
uniform mat4 u_view;
uniform vec3 u_cam;
uniform float u_far, u_focal;
in vec3 v_unit;
in vec3 v_unit_normal;
flat in int v_prim;
layout(location = 0) out vec4 f_colour;
layout(location = 1) out float f_depth;
void main() {
    int i = 5 * v_prim;
    vec4 a = prim[i], b = prim[i + 1], c = prim[i + 2], d = prim[i + 3];
    float cy = cos(a.w), sy = sin(a.w);
    mat3 rot = mat3(cy, 0.0, -sy, 0.0, 1.0, 0.0, sy, 0.0, cy);  // column-major: R_y(yaw)
    vec3 world = a.xyz + rot * (b.xyz * v_unit);
    vec3 n = normalize(rot * (v_unit_normal / b.xyz));
    vec3 r = world - u_cam;
    float dist = length(r);
    if (dist > u_far) discard;
    float fp = dist / (u_focal * max(abs(dot(n, r)) / dist, 0.15));
    vec3 col = landmark_colour(v_unit, v_unit_normal, b.xyz, int(b.w + 0.5), int(c.w + 0.5), d.w,
                               int(prim[i + 4].x + 0.5), c.xyz, d.xyz, fp);
    f_colour = vec4(fogged(lit(col, n), dist), 1.0);
    f_depth = (u_view * vec4(world, 1.0)).z;
}
"""
